//! The demo's fixed vocabulary: locales (languages, time zones, names in their own scripts with
//! a romanisation for e-mail addresses, phone prefixes), teams, bots, case topics with their
//! subjects, resolutions and root causes, and the phrases interactions and notes are made of.

use sijil_domain::{Channel, Priority, SlaPolicy};

/// Where a customer or agent is from: language, zones and names.
pub struct Locale {
    /// BCP-47 tag.
    pub language: &'static str,
    /// IANA zones people of this locale live in.
    pub zones: &'static [&'static str],
    /// Given names: (native script, romanised).
    pub given: &'static [(&'static str, &'static str)],
    /// Family names: (native script, romanised).
    pub family: &'static [(&'static str, &'static str)],
    /// Whether the family name comes first (Japanese, Chinese, Korean).
    pub family_first: bool,
    /// Country calling code.
    pub calling_code: &'static str,
    /// Mail domain.
    pub mail_domain: &'static str,
    /// How often customers are from here (relative).
    pub weight: u32,
    /// "Hello, I need help with …" in this language, if the demo speaks it.
    pub greeting: Option<&'static str>,
}

/// Every locale of the demo.
pub const LOCALES: &[Locale] = &[
    Locale {
        language: "ar",
        zones: &[
            "Asia/Riyadh",
            "Asia/Dubai",
            "Africa/Cairo",
            "Asia/Amman",
            "Africa/Casablanca",
        ],
        given: &[
            ("أمينة", "amina"),
            ("محمد", "mohammed"),
            ("فاطمة", "fatima"),
            ("عمر", "omar"),
            ("ليلى", "layla"),
            ("يوسف", "yousef"),
            ("نورة", "noura"),
            ("خالد", "khalid"),
            ("سارة", "sara"),
            ("حسن", "hassan"),
        ],
        family: &[
            ("الحربي", "alharbi"),
            ("القحطاني", "alqahtani"),
            ("المصري", "almasri"),
            ("الزهراني", "alzahrani"),
            ("حداد", "haddad"),
            ("الشمري", "alshammari"),
            ("منصور", "mansour"),
        ],
        family_first: false,
        calling_code: "966",
        mail_domain: "example.sa",
        weight: 18,
        greeting: Some("مرحبا، أحتاج مساعدة بخصوص"),
    },
    Locale {
        language: "en-GB",
        zones: &["Europe/London", "Europe/Dublin"],
        given: &[
            ("Oliver", "oliver"),
            ("Amelia", "amelia"),
            ("Harry", "harry"),
            ("Isla", "isla"),
            ("George", "george"),
            ("Ava", "ava"),
            ("Priya", "priya"),
        ],
        family: &[
            ("Smith", "smith"),
            ("Jones", "jones"),
            ("Taylor", "taylor"),
            ("Brown", "brown"),
            ("Patel", "patel"),
            ("O'Brien", "obrien"),
        ],
        family_first: false,
        calling_code: "44",
        mail_domain: "example.co.uk",
        weight: 12,
        greeting: Some("Hello, I need help with"),
    },
    Locale {
        language: "en-US",
        zones: &[
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
        ],
        given: &[
            ("James", "james"),
            ("Emma", "emma"),
            ("Michael", "michael"),
            ("Sophia", "sophia"),
            ("DeShawn", "deshawn"),
            ("Maria", "maria"),
            ("Ethan", "ethan"),
        ],
        family: &[
            ("Johnson", "johnson"),
            ("Williams", "williams"),
            ("Garcia", "garcia"),
            ("Miller", "miller"),
            ("Nguyen", "nguyen"),
            ("Davis", "davis"),
        ],
        family_first: false,
        calling_code: "1",
        mail_domain: "example.com",
        weight: 14,
        greeting: Some("Hi, I need help with"),
    },
    Locale {
        language: "fr-FR",
        zones: &["Europe/Paris", "Europe/Brussels", "Africa/Dakar"],
        given: &[
            ("Camille", "camille"),
            ("Léa", "lea"),
            ("Hugo", "hugo"),
            ("Chloé", "chloe"),
            ("Théo", "theo"),
            ("Inès", "ines"),
            ("Mathis", "mathis"),
        ],
        family: &[
            ("Martin", "martin"),
            ("Bernard", "bernard"),
            ("Dubois", "dubois"),
            ("Lefèvre", "lefevre"),
            ("Moreau", "moreau"),
            ("Diallo", "diallo"),
        ],
        family_first: false,
        calling_code: "33",
        mail_domain: "example.fr",
        weight: 10,
        greeting: Some("Bonjour, j'ai besoin d'aide concernant"),
    },
    Locale {
        language: "ja",
        zones: &["Asia/Tokyo"],
        given: &[
            ("花子", "hanako"),
            ("太郎", "taro"),
            ("結衣", "yui"),
            ("翔太", "shota"),
            ("さくら", "sakura"),
            ("健", "ken"),
        ],
        family: &[
            ("佐藤", "sato"),
            ("鈴木", "suzuki"),
            ("高橋", "takahashi"),
            ("田中", "tanaka"),
            ("渡辺", "watanabe"),
        ],
        family_first: true,
        calling_code: "81",
        mail_domain: "example.jp",
        weight: 8,
        greeting: Some("こんにちは。次の件で助けが必要です:"),
    },
    Locale {
        language: "es-MX",
        zones: &["America/Mexico_City", "America/Bogota", "Europe/Madrid"],
        given: &[
            ("Sofía", "sofia"),
            ("Mateo", "mateo"),
            ("Valentina", "valentina"),
            ("Santiago", "santiago"),
            ("Lucía", "lucia"),
        ],
        family: &[
            ("Hernández", "hernandez"),
            ("López", "lopez"),
            ("Martínez", "martinez"),
            ("Rodríguez", "rodriguez"),
            ("Gómez", "gomez"),
        ],
        family_first: false,
        calling_code: "52",
        mail_domain: "example.mx",
        weight: 8,
        greeting: Some("Hola, necesito ayuda con"),
    },
    Locale {
        language: "de-DE",
        zones: &["Europe/Berlin", "Europe/Vienna", "Europe/Zurich"],
        given: &[
            ("Lukas", "lukas"),
            ("Mia", "mia"),
            ("Jonas", "jonas"),
            ("Hannah", "hannah"),
            ("Felix", "felix"),
        ],
        family: &[
            ("Müller", "mueller"),
            ("Schmidt", "schmidt"),
            ("Schneider", "schneider"),
            ("Fischer", "fischer"),
            ("Weber", "weber"),
        ],
        family_first: false,
        calling_code: "49",
        mail_domain: "example.de",
        weight: 7,
        greeting: Some("Hallo, ich brauche Hilfe bei"),
    },
    Locale {
        language: "hi-IN",
        zones: &["Asia/Kolkata"],
        given: &[
            ("आरव", "aarav"),
            ("अनन्या", "ananya"),
            ("विवान", "vivaan"),
            ("दिया", "diya"),
            ("अर्जुन", "arjun"),
        ],
        family: &[
            ("शर्मा", "sharma"),
            ("वर्मा", "verma"),
            ("गुप्ता", "gupta"),
            ("सिंह", "singh"),
            ("अय्यर", "iyer"),
        ],
        family_first: false,
        calling_code: "91",
        mail_domain: "example.in",
        weight: 7,
        greeting: None,
    },
    Locale {
        language: "tr",
        zones: &["Europe/Istanbul"],
        given: &[
            ("Elif", "elif"),
            ("Yusuf", "yusuf"),
            ("Zeynep", "zeynep"),
            ("Emir", "emir"),
        ],
        family: &[
            ("Yılmaz", "yilmaz"),
            ("Kaya", "kaya"),
            ("Demir", "demir"),
            ("Şahin", "sahin"),
        ],
        family_first: false,
        calling_code: "90",
        mail_domain: "example.com.tr",
        weight: 4,
        greeting: None,
    },
    Locale {
        language: "sw",
        zones: &["Africa/Nairobi", "Africa/Dar_es_Salaam"],
        given: &[
            ("Amani", "amani"),
            ("Baraka", "baraka"),
            ("Neema", "neema"),
            ("Juma", "juma"),
        ],
        family: &[
            ("Mwangi", "mwangi"),
            ("Otieno", "otieno"),
            ("Njoroge", "njoroge"),
            ("Wanjiru", "wanjiru"),
        ],
        family_first: false,
        calling_code: "254",
        mail_domain: "example.co.ke",
        weight: 4,
        greeting: None,
    },
    Locale {
        language: "pt-BR",
        zones: &["America/Sao_Paulo", "Europe/Lisbon"],
        given: &[
            ("João", "joao"),
            ("Ana", "ana"),
            ("Gabriel", "gabriel"),
            ("Beatriz", "beatriz"),
        ],
        family: &[
            ("Silva", "silva"),
            ("Santos", "santos"),
            ("Oliveira", "oliveira"),
            ("Souza", "souza"),
        ],
        family_first: false,
        calling_code: "55",
        mail_domain: "example.com.br",
        weight: 5,
        greeting: Some("Olá, preciso de ajuda com"),
    },
    Locale {
        language: "zh-Hans",
        zones: &["Asia/Shanghai", "Asia/Singapore"],
        given: &[("伟", "wei"), ("芳", "fang"), ("静", "jing"), ("磊", "lei")],
        family: &[("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu")],
        family_first: true,
        calling_code: "86",
        mail_domain: "example.cn",
        weight: 5,
        greeting: None,
    },
    Locale {
        language: "ko",
        zones: &["Asia/Seoul"],
        given: &[("민준", "minjun"), ("서연", "seoyeon"), ("지호", "jiho")],
        family: &[("김", "kim"), ("이", "lee"), ("박", "park")],
        family_first: true,
        calling_code: "82",
        mail_domain: "example.kr",
        weight: 3,
        greeting: None,
    },
];

/// A team of the demo workspace.
pub struct TeamSpec {
    pub name: &'static str,
}

/// The teams: front line (level 1), billing and technical tier 2 (level 2), engineering
/// escalations (level 3), VIP care (level 1).
pub const TEAMS: &[TeamSpec] = &[
    TeamSpec { name: "front line" },
    TeamSpec { name: "billing" },
    TeamSpec {
        name: "technical tier 2",
    },
    TeamSpec {
        name: "engineering escalations",
    },
    TeamSpec { name: "VIP care" },
];

/// The workspace's top escalation level.
pub const TOP_LEVEL: u8 = 3;

/// Bots by the channel they answer.
pub fn bot_for(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Ivr => Some("ivr-main-menu"),
        Channel::Chatbot => Some("faq-bot"),
        Channel::SelfService => Some("help-centre"),
        _ => None,
    }
}

/// How often each channel is used (same order as [`Channel::ALL`]).
pub const CHANNEL_WEIGHTS: [u32; 10] = [22, 20, 16, 5, 10, 3, 8, 7, 5, 4];

/// A kind of problem customers bring, with what a case about it looks like.
pub struct Topic {
    pub category: &'static str,
    pub subjects: &'static [&'static str],
    pub resolutions: &'static [&'static str],
    pub root_causes: &'static [&'static str],
    /// The team a case escalates to.
    pub escalation_team: usize,
}

/// The topics, by how often they come up (weights in [`TOPIC_WEIGHTS`]).
pub const TOPICS: &[Topic] = &[
    Topic {
        category: "billing",
        subjects: &[
            "Charged twice for the March invoice",
            "Refund not received after cancellation",
            "VAT missing from the invoice",
            "Card declined although the balance is fine",
        ],
        resolutions: &[
            "Duplicate charge refunded; customer notified by e-mail.",
            "Refund re-issued to the original card; arrives in 3-5 working days.",
            "Invoice regenerated with the correct VAT number.",
        ],
        root_causes: &[
            "payment gateway retry",
            "manual billing error",
            "bank-side decline",
        ],
        escalation_team: 1,
    },
    Topic {
        category: "delivery",
        subjects: &[
            "Parcel marked delivered but not received",
            "Delivery delayed for a week",
            "Wrong item delivered",
        ],
        resolutions: &[
            "Replacement shipped with express delivery.",
            "Courier located the parcel and redelivered it.",
            "Return label sent and the right item dispatched.",
        ],
        root_causes: &[
            "courier error",
            "warehouse picking error",
            "address validation gap",
        ],
        escalation_team: 3,
    },
    Topic {
        category: "account access",
        subjects: &[
            "Cannot log in after the password reset",
            "Two-factor codes do not arrive",
            "Account locked after travel",
        ],
        resolutions: &[
            "Identity verified and the account unlocked.",
            "Phone number corrected; codes now arrive.",
            "Session reset and the customer signed in again.",
        ],
        root_causes: &[
            "SMS provider outage",
            "fraud rule false positive",
            "user error",
        ],
        escalation_team: 2,
    },
    Topic {
        category: "technical",
        subjects: &[
            "Mobile app crashes on start",
            "Sync stopped working on the desktop client",
            "Export to CSV produces an empty file",
        ],
        resolutions: &[
            "Fixed in app release 5.2.1; customer updated.",
            "Cache cleared and sync re-established.",
            "Workaround given; fix scheduled for the next release.",
        ],
        root_causes: &["software defect", "configuration error", "known issue"],
        escalation_team: 2,
    },
    Topic {
        category: "product question",
        subjects: &[
            "How to add a second user to the plan",
            "Difference between the Plus and Pro plans",
            "Where to find the warranty certificate",
        ],
        resolutions: &[
            "Explained the steps; customer completed them during the call.",
            "Sent the comparison and the relevant help-centre article.",
        ],
        root_causes: &["documentation gap", "how-to question"],
        escalation_team: 4,
    },
    Topic {
        category: "complaint",
        subjects: &[
            "Rude behaviour at the branch",
            "Promised call-back never came",
            "Service outage affected my business",
        ],
        resolutions: &[
            "Apologised, credited one month and shared the feedback with the branch manager.",
            "Call-back made and the underlying issue solved.",
        ],
        root_causes: &["process not followed", "service outage", "staff training"],
        escalation_team: 3,
    },
];

/// Relative frequency of each topic.
pub const TOPIC_WEIGHTS: [u32; 6] = [24, 18, 16, 18, 16, 8];

/// Summaries of contacts that need no case.
pub const QUICK_SUMMARIES: &[&str] = &[
    "Asked about opening hours during the holidays.",
    "Updated the delivery address for the next order.",
    "Checked the status of an order; on its way.",
    "Wanted to know how loyalty points are earned.",
    "Requested a copy of the last invoice; sent by e-mail.",
    "Asked whether the plan can be paused for a month.",
    "Confirmed the appointment for next week.",
];

/// Summaries of contacts about an open case.
pub const CASE_CONTACT_SUMMARIES: &[&str] = &[
    "Customer asked for an update on the case.",
    "Called the customer with progress; more information requested.",
    "Customer sent the requested screenshots.",
    "Explained the next steps and the expected time.",
];

/// Internal notes.
pub const NOTES: &[&str] = &[
    "Customer prefers to be called after 17:00 local time.",
    "Verified identity with the last four digits of the card.",
    "Second contact about the same issue this month; watch for churn.",
    "Customer was very patient; mention it in the follow-up.",
    "Checked with the warehouse: stock arrives on Thursday.",
];

/// Reasons to escalate a case.
pub const ESCALATION_REASONS: &[&str] = &[
    "Needs access the front line does not have.",
    "Customer asked for a supervisor.",
    "Suspected defect: needs technical investigation.",
    "Refund above the front-line approval limit.",
];

/// Reasons to send a case back down a level.
pub const DEESCALATION_REASONS: &[&str] = &[
    "Investigation done; front line can close the loop with the customer.",
    "Specialist fix applied; hand back for confirmation.",
];

/// Reasons a resolved case comes back.
pub const REOPEN_REASONS: &[&str] = &[
    "The problem came back two days later.",
    "Refund still not visible on the statement.",
    "Customer says the fix did not work on their second device.",
];

/// Survey comments by sentiment: unhappy, neutral, happy.
pub const COMMENTS: [&[&str]; 3] = [
    &[
        "Took far too long and I had to repeat myself.",
        "Nobody called me back as promised.",
    ],
    &["Fine, but it could have been faster.", "OK in the end."],
    &[
        "Quick and friendly, thank you!",
        "The agent went above and beyond.",
        "شكراً جزيلاً، خدمة ممتازة",
        "Service impeccable, merci !",
        "丁寧に対応していただきありがとうございました。",
    ],
];

/// Outcomes of a completed detractor follow-up.
pub const FOLLOW_UP_OUTCOMES: &[&str] = &[
    "Called back, apologised and offered a goodwill credit; customer accepted.",
    "Listened to the feedback and explained the changes we are making.",
    "Customer satisfied after the call; no further action.",
];

/// Reasons a follow-up is cancelled.
pub const FOLLOW_UP_CANCELLATIONS: &[&str] = &[
    "Customer asked not to be contacted again.",
    "Could not reach the customer after three attempts.",
];

/// Why an agent is recognised.
pub const RECOGNITION_REASONS: &[&str] = &[
    "Highest CSAT of the team this month.",
    "Turned an angry complaint into a five-star review.",
    "Fastest first responses in the queue this month.",
];

/// The SLA policy of a case of this priority.
pub fn sla_for(priority: Priority) -> SlaPolicy {
    let (first_response_minutes, resolution_minutes) = match priority {
        Priority::Urgent => (15, 4 * 60),
        Priority::High => (60, 8 * 60),
        Priority::Normal => (4 * 60, 48 * 60),
        Priority::Low => (8 * 60, 5 * 24 * 60),
    };
    SlaPolicy {
        first_response_minutes,
        resolution_minutes,
    }
}

/// Priorities, by how often they occur.
pub const PRIORITIES: [(Priority, u32); 4] = [
    (Priority::Low, 15),
    (Priority::Normal, 55),
    (Priority::High, 22),
    (Priority::Urgent, 8),
];

/// A display name in the locale's own order and script.
pub fn display_name(locale: &Locale, given: usize, family: usize) -> String {
    let (g, _) = locale.given[given % locale.given.len()];
    let (f, _) = locale.family[family % locale.family.len()];
    if locale.family_first {
        let sep = if locale.language == "ja" { " " } else { "" };
        format!("{f}{sep}{g}")
    } else {
        format!("{g} {f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sijil_domain::validate;

    #[test]
    fn every_locale_passes_the_domain_rules() {
        for locale in LOCALES {
            assert!(
                validate::language_tag(locale.language).is_ok(),
                "{}",
                locale.language
            );
            for zone in locale.zones {
                assert!(validate::time_zone(zone).is_ok(), "{zone}");
            }
            for (g, _) in locale.given {
                for (f, _) in locale.family {
                    let name = display_name(locale, 0, 0);
                    assert!(validate::text(&validate::DISPLAY_NAME, &name).is_ok());
                    assert!(!g.is_empty() && !f.is_empty());
                }
            }
        }
        assert_eq!(CHANNEL_WEIGHTS.len(), Channel::ALL.len());
        assert_eq!(TOPIC_WEIGHTS.len(), TOPICS.len());
        assert!(TOPICS.iter().all(|t| t.escalation_team < TEAMS.len()));
    }
}
