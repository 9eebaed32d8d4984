//! Validation and normalisation of raw inputs.

use sijil_domain::tz_names::TZ_NAMES;
use sijil_domain::validate::{self, TextRule};
use sijil_domain::*;

fn code<T: std::fmt::Debug>(result: Result<T, DomainError>) -> &'static str {
    match result {
        Ok(value) => panic!("accepted: {value:?}"),
        Err(error) => error.code(),
    }
}

// ------------------------------------------------------------ BCP-47

#[test]
fn well_formed_language_tags_come_back_in_canonical_case() {
    let cases = [
        ("ar", "ar"),
        ("AR", "ar"),
        ("en-GB", "en-GB"),
        ("en-gb", "en-GB"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        ("ZH-HANT-tw", "zh-Hant-TW"),
        ("sr-Latn-RS", "sr-Latn-RS"),
        ("sr-latn-rs", "sr-Latn-RS"),
        ("x-private", "x-private"),
        ("X-Private-Use", "x-private-use"),
        ("ja", "ja"),
        ("es-419", "es-419"),
        ("zh-yue-HK", "zh-yue-HK"),
        ("zh-min-nan", "zh-min-nan"),
        ("de-CH-1996", "de-CH-1996"),
        ("sl-rozaj-biske", "sl-rozaj-biske"),
        ("en-US-u-ca-gregory", "en-US-u-ca-gregory"),
        ("ar-SA-u-nu-ARAB", "ar-SA-u-nu-arab"),
        ("en-a-bbb-x-a-ccc", "en-a-bbb-x-a-ccc"),
        ("fil", "fil"),
        (" en ", "en"),
    ];
    for (raw, canonical) in cases {
        assert_eq!(
            validate::language_tag(raw).as_deref(),
            Ok(canonical),
            "tag {raw}"
        );
    }
}

#[test]
fn malformed_language_tags_are_refused() {
    let cases = [
        "",
        " ",
        "e",
        "english",
        "en_GB",
        "en-",
        "-en",
        "en--GB",
        "en-GB-",
        "x",
        "en-x",
        "en-a",
        "en-a-x-foo",
        "en-GB-GB",
        "en-Latn-Latn",
        "de-1996-1996",
        "en-u-ca-u-nu",
        "i-klingon",
        "123",
        "en-GB-toolongsubtag",
        "en GB",
        "ar-SA!",
        "日本語",
    ];
    for raw in cases {
        assert_eq!(
            code(validate::language_tag(raw)),
            "INVALID_LANGUAGE",
            "tag {raw:?}"
        );
    }
    let too_long = format!("en{}", "-abcdefgh".repeat(20));
    assert_eq!(code(validate::language_tag(&too_long)), "INVALID_LANGUAGE");
}

// ------------------------------------------------------------ time zones

#[test]
fn iana_time_zones_are_accepted() {
    for zone in [
        "Asia/Riyadh",
        "Europe/Paris",
        "UTC",
        "Etc/UTC",
        "Etc/GMT+3",
        "America/Argentina/Buenos_Aires",
        "Asia/Kolkata",
        "Asia/Calcutta",
        "US/Eastern",
    ] {
        assert_eq!(validate::time_zone(zone).as_deref(), Ok(zone));
    }
}

#[test]
fn time_zones_are_matched_without_regard_to_case_and_trimmed() {
    assert_eq!(
        validate::time_zone(" europe/PARIS ").as_deref(),
        Ok("Europe/Paris")
    );
    assert_eq!(validate::time_zone("utc").as_deref(), Ok("UTC"));
}

#[test]
fn unknown_time_zones_are_refused() {
    for zone in [
        "Mars/Olympus",
        "../etc",
        "../etc/passwd",
        "",
        "Europe",
        "Europe/",
        "Asia/Riyadh/",
        "GMT+25",
        "posixrules ",
    ] {
        assert_eq!(
            code(validate::time_zone(zone)),
            "INVALID_TIME_ZONE",
            "{zone:?}"
        );
    }
}

#[test]
fn the_time_zone_list_is_sorted_unique_and_complete_enough() {
    assert!(TZ_NAMES.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    assert!(TZ_NAMES.len() > 400);
    for zone in [
        "UTC",
        "Etc/UTC",
        "Etc/GMT-14",
        "Asia/Riyadh",
        "Pacific/Auckland",
    ] {
        assert!(TZ_NAMES.binary_search(&zone).is_ok(), "{zone}");
    }
}

// ------------------------------------------------------------ text

#[test]
fn text_is_trimmed_and_bounded() {
    assert_eq!(
        validate::text(&validate::DISPLAY_NAME, "  Amina  ").as_deref(),
        Ok("Amina")
    );
    assert_eq!(
        code(validate::text(&validate::DISPLAY_NAME, "   ")),
        "INVALID_TEXT"
    );
    let name = "ع".repeat(200);
    assert_eq!(
        validate::text(&validate::DISPLAY_NAME, &name).as_deref(),
        Ok(name.as_str())
    );
    assert_eq!(
        code(validate::text(&validate::DISPLAY_NAME, &"ع".repeat(201))),
        "INVALID_TEXT"
    );
    assert!(validate::text(&validate::NOTE, &"n".repeat(10_000)).is_ok());
    assert_eq!(
        code(validate::text(&validate::NOTE, &"n".repeat(10_001))),
        "INVALID_TEXT"
    );
    assert!(validate::text(&validate::SUMMARY, &"s".repeat(4000)).is_ok());
    assert_eq!(
        code(validate::text(&validate::SUMMARY, &"s".repeat(4001))),
        "INVALID_TEXT"
    );
    assert!(validate::text(&validate::REASON, &"r".repeat(1000)).is_ok());
    assert_eq!(
        code(validate::text(&validate::REASON, &"r".repeat(1001))),
        "INVALID_TEXT"
    );
    assert_eq!(validate::text(&validate::SUMMARY, "  ").as_deref(), Ok(""));
}

#[test]
fn control_characters_are_refused_except_newline_and_tab_in_long_text() {
    assert_eq!(
        validate::text(&validate::NOTE, "line one\r\nline\ttwo\rthree").as_deref(),
        Ok("line one\nline\ttwo\nthree")
    );
    assert_eq!(
        code(validate::text(&validate::NOTE, "bell\u{7}")),
        "INVALID_TEXT"
    );
    assert_eq!(
        code(validate::text(&validate::DISPLAY_NAME, "two\nlines")),
        "INVALID_TEXT"
    );
    assert_eq!(
        code(validate::text(&validate::DISPLAY_NAME, "tab\there")),
        "INVALID_TEXT"
    );
    assert_eq!(
        code(validate::text(&validate::SUBJECT, "nul\0")),
        "INVALID_TEXT"
    );
}

#[test]
fn optional_text_treats_blank_as_absent() {
    let rule = TextRule {
        field: "x",
        min: 1,
        max: 3,
        multiline: false,
    };
    assert_eq!(validate::optional_text(&rule, None), Ok(None));
    assert_eq!(validate::optional_text(&rule, Some(" \n ")), Ok(None));
    assert_eq!(
        validate::optional_text(&rule, Some(" ab ")),
        Ok(Some("ab".into()))
    );
    assert_eq!(
        code(validate::optional_text(&rule, Some("abcd"))),
        "INVALID_TEXT"
    );
}

#[test]
fn references_are_short_plain_identifiers() {
    assert_eq!(
        validate::reference("reference", " CUST-0001_a ").as_deref(),
        Ok("CUST-0001_a")
    );
    assert!(validate::reference("reference", &"A".repeat(64)).is_ok());
    for bad in ["", "CUST 1", "CUST/1", "ÇUST", &"A".repeat(65)] {
        assert_eq!(
            code(validate::reference("reference", bad)),
            "INVALID_REFERENCE",
            "{bad:?}"
        );
    }
}

// ------------------------------------------------------------ contact points

#[test]
fn emails_are_checked_and_lower_cased() {
    assert_eq!(
        validate::email(" Amina.Al-Harbi+CRM@Example.COM ").as_deref(),
        Ok("amina.al-harbi+crm@example.com")
    );
    assert!(validate::email("a@xn--mgbh0fb.xn--mgberp4a5d4ar").is_ok());
    for bad in [
        "",
        "amina",
        "amina@",
        "@example.com",
        "a@@example.com",
        "a@b@example.com",
        "a@example",
        "a@-example.com",
        "a@example-.com",
        "a@example..com",
        ".a@example.com",
        "a.@example.com",
        "a..b@example.com",
        "a b@example.com",
        "a@exa mple.com",
        "a@127.0.0.1",
        "\"a\"@example.com",
        "أمينة@example.com",
    ] {
        assert_eq!(
            code(validate::email(bad)),
            "INVALID_CONTACT_POINT",
            "{bad:?}"
        );
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert_eq!(code(validate::email(&long_local)), "INVALID_CONTACT_POINT");
}

#[test]
fn phone_numbers_are_normalised_to_e164() {
    let cases = [
        ("+966 50 123 4567", "+966501234567"),
        ("00966501234567", "+966501234567"),
        ("+44 (20) 7946-0958", "+442079460958"),
        ("+1.415.555.0100", "+14155550100"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ];
    for (raw, normal) in cases {
        assert_eq!(validate::phone(raw).as_deref(), Ok(normal), "{raw}");
    }
    for bad in [
        "",
        "0501234567",
        "966501234567",
        "+1234567",
        "+1234567890123456",
        "+0966501234567",
        "+966 50 123 456x",
        "+966+501234567",
        "++966501234567",
    ] {
        assert_eq!(
            code(validate::phone(bad)),
            "INVALID_CONTACT_POINT",
            "{bad:?}"
        );
    }
}

#[test]
fn handles_are_network_colon_handle() {
    assert_eq!(
        validate::handle(ContactKind::Social, " X:@amina ").as_deref(),
        Ok("x:@amina")
    );
    assert_eq!(
        validate::handle(ContactKind::Messaging, "WhatsApp:+966501234567").as_deref(),
        Ok("whatsapp:+966501234567")
    );
    for bad in [
        "amina",
        ":amina",
        "x:",
        "x:@a mina",
        "9gag:amina",
        "x y:amina",
    ] {
        assert_eq!(
            code(validate::handle(ContactKind::Social, bad)),
            "INVALID_CONTACT_POINT",
            "{bad:?}"
        );
    }
}

#[test]
fn contact_points_are_checked_by_kind() {
    let point = |kind, value: &str| ContactPoint {
        kind,
        value: value.to_owned(),
    };
    assert_eq!(
        validate::contact_point(&point(ContactKind::Phone, "0044 20 7946 0958")),
        Ok(point(ContactKind::Phone, "+442079460958"))
    );
    assert_eq!(
        code(validate::contact_point(&point(
            ContactKind::Email,
            "+442079460958"
        ))),
        "INVALID_CONTACT_POINT"
    );
}

// ------------------------------------------------------------ currency, scores, rewards

#[test]
fn currencies_are_three_letters() {
    assert_eq!(validate::currency("SAR").as_deref(), Ok("SAR"));
    assert_eq!(validate::currency(" eur ").as_deref(), Ok("EUR"));
    for bad in ["", "EU", "EURO", "E1R", "€€€"] {
        assert_eq!(code(validate::currency(bad)), "INVALID_CURRENCY", "{bad:?}");
    }
}

#[test]
fn scores_stay_on_their_scales() {
    for v in 0..=255u8 {
        assert_eq!(
            validate::score(Score::Csat(v)).is_ok(),
            (1..=5).contains(&v)
        );
        assert_eq!(validate::score(Score::Nps(v)).is_ok(), v <= 10);
        assert_eq!(validate::score(Score::Ces(v)).is_ok(), (1..=7).contains(&v));
    }
    assert_eq!(
        validate::score(Score::Nps(11)),
        Err(DomainError::ScoreOutOfRange {
            scale: "NPS",
            value: 11,
            min: 0,
            max: 10
        })
    );
}

#[test]
fn rewards_give_something() {
    assert_eq!(validate::reward(&Reward::Kudos), Ok(Reward::Kudos));
    assert_eq!(validate::reward(&Reward::Points(1)), Ok(Reward::Points(1)));
    assert_eq!(code(validate::reward(&Reward::Points(0))), "INVALID_REWARD");
    assert_eq!(
        code(validate::reward(&Reward::Voucher {
            amount_minor: 0,
            currency: "SAR".into()
        })),
        "INVALID_REWARD"
    );
}
