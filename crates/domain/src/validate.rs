//! Validation and normalisation of raw inputs: free text, references, BCP-47 language tags,
//! IANA time zones, contact points (email, E.164 phone, `network:handle`), currency codes,
//! survey scores and rewards.
//!
//! Every function takes the raw input and returns the normalised value the domain records, or
//! the [`DomainError`] explaining the refusal. The limits are documented on the constants below;
//! lengths are counted in Unicode scalar values (`char`s) after trimming.

use crate::error::DomainError;
use crate::tz_names::TZ_NAMES;
use crate::values::{ContactKind, ContactPoint, Reward, Score};

// ---------------------------------------------------------------- free text

/// How a text field is checked: its name (for errors), its length bounds in `char`s after
/// trimming, and whether it may span lines.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TextRule {
    /// The field's name, as errors show it.
    pub field: &'static str,
    /// Fewest characters after trimming (0 allows empty text).
    pub min: usize,
    /// Most characters after trimming.
    pub max: usize,
    /// Long text: newlines and tabs allowed (CR LF and lone CR become LF). Single-line text
    /// refuses every control character.
    pub multiline: bool,
}

/// A customer's or agent's display name: 1 to 200 characters, one line.
pub const DISPLAY_NAME: TextRule = TextRule {
    field: "display name",
    min: 1,
    max: 200,
    multiline: false,
};

/// A case subject: 1 to 300 characters, one line.
pub const SUBJECT: TextRule = TextRule {
    field: "subject",
    min: 1,
    max: 300,
    multiline: false,
};

/// A case category: 1 to 100 characters, one line.
pub const CATEGORY: TextRule = TextRule {
    field: "category",
    min: 1,
    max: 100,
    multiline: false,
};

/// A root cause recorded at resolution: 1 to 100 characters, one line.
pub const ROOT_CAUSE: TextRule = TextRule {
    field: "root cause",
    min: 1,
    max: 100,
    multiline: false,
};

/// An interaction summary: up to 4000 characters (may be empty, for example an IVR call).
pub const SUMMARY: TextRule = TextRule {
    field: "summary",
    min: 0,
    max: 4000,
    multiline: true,
};

/// How a case was resolved: 1 to 4000 characters.
pub const RESOLUTION: TextRule = TextRule {
    field: "resolution",
    min: 1,
    max: 4000,
    multiline: true,
};

/// A note on a case or interaction: 1 to 10 000 characters.
pub const NOTE: TextRule = TextRule {
    field: "note",
    min: 1,
    max: 10_000,
    multiline: true,
};

/// The note on a follow-up: 1 to 4000 characters.
pub const FOLLOW_UP_NOTE: TextRule = TextRule {
    field: "follow-up note",
    min: 1,
    max: 4000,
    multiline: true,
};

/// A survey comment: up to 4000 characters (blank means no comment).
pub const COMMENT: TextRule = TextRule {
    field: "comment",
    min: 0,
    max: 4000,
    multiline: true,
};

/// A reason (escalation, de-escalation, reopen, cancellation, recognition): 1 to 1000
/// characters.
pub const REASON: TextRule = TextRule {
    field: "reason",
    min: 1,
    max: 1000,
    multiline: true,
};

/// The outcome of a follow-up: 1 to 1000 characters.
pub const OUTCOME: TextRule = TextRule {
    field: "outcome",
    min: 1,
    max: 1000,
    multiline: true,
};

/// A pointer to a call recording (URI or storage key): 1 to 500 characters, one line.
pub const RECORDING_REF: TextRule = TextRule {
    field: "recording reference",
    min: 1,
    max: 500,
    multiline: false,
};

/// Most characters in a reference (see [`reference`]).
pub const REFERENCE_MAX: usize = 64;

fn text_error(field: &'static str, reason: impl Into<String>) -> DomainError {
    DomainError::InvalidText {
        field,
        reason: reason.into(),
    }
}

/// Checks and normalises a text field: trims surrounding whitespace, turns CR LF and lone CR
/// into LF in multi-line text, refuses control characters (except newline and tab in
/// multi-line text) and enforces the length bounds.
pub fn text(rule: &TextRule, raw: &str) -> Result<String, DomainError> {
    let unified;
    let source = if rule.multiline && raw.contains('\r') {
        unified = raw.replace("\r\n", "\n").replace('\r', "\n");
        unified.as_str()
    } else {
        raw
    };
    let trimmed = source.trim();
    if let Some(bad) = trimmed
        .chars()
        .find(|&c| c.is_control() && !(rule.multiline && (c == '\n' || c == '\t')))
    {
        return Err(text_error(
            rule.field,
            format!("contains the control character U+{:04X}", u32::from(bad)),
        ));
    }
    let length = trimmed.chars().count();
    if length < rule.min {
        return Err(text_error(
            rule.field,
            if length == 0 {
                "must not be empty".to_owned()
            } else {
                format!("must be at least {} characters, got {length}", rule.min)
            },
        ));
    }
    if length > rule.max {
        return Err(text_error(
            rule.field,
            format!("must be at most {} characters, got {length}", rule.max),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Like [`text`] for an optional field: absent or blank input gives `None`.
pub fn optional_text(rule: &TextRule, raw: Option<&str>) -> Result<Option<String>, DomainError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.trim().is_empty() => Ok(None),
        Some(raw) => text(rule, raw).map(Some),
    }
}

/// Checks a reference (a customer's reference number, an erasure request's reference, a bot's
/// name): 1 to 64 of `[A-Za-z0-9-_]` after trimming, kept as given.
pub fn reference(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    let ok = !trimmed.is_empty()
        && trimmed.len() <= REFERENCE_MAX
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(DomainError::InvalidReference {
            field,
            value: trimmed.chars().take(REFERENCE_MAX + 1).collect(),
        })
    }
}

// ---------------------------------------------------------------- language tags

/// Most characters in a language tag.
pub const LANGUAGE_TAG_MAX: usize = 128;

fn language_error(value: &str, reason: impl Into<String>) -> DomainError {
    DomainError::InvalidLanguage {
        value: value.chars().take(LANGUAGE_TAG_MAX).collect(),
        reason: reason.into(),
    }
}

fn is_alpha(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if i == 0 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn is_variant(s: &str) -> bool {
    (5..=8).contains(&s.len())
        || (s.len() == 4 && s.as_bytes().first().is_some_and(|b| b.is_ascii_digit()))
}

/// Checks a BCP-47 language tag (RFC 5646 syntax, case-insensitive) and returns it in canonical
/// case: language and extlang lower case, script title case, region upper case, the rest lower
/// case (`EN-gb` gives `en-GB`, `zh-hant-tw` gives `zh-Hant-TW`).
///
/// Accepted: `language[-extlang]{0,3}[-script][-region]{-variant}{-extension}[-x-private]`, and
/// a private-use tag alone (`x-whatever`). Refused beyond the RFC's syntax: primary language
/// subtags of 4 to 8 letters (reserved or registrable, but none is registered, so `english` is
/// refused), repeated variants or extension singletons, and grandfathered irregular tags such
/// as `i-klingon`.
pub fn language_tag(raw: &str) -> Result<String, DomainError> {
    let tag = raw.trim();
    if tag.is_empty() {
        return Err(language_error(tag, "must not be empty"));
    }
    if tag.len() > LANGUAGE_TAG_MAX {
        return Err(language_error(
            tag,
            format!("must be at most {LANGUAGE_TAG_MAX} characters"),
        ));
    }
    let subtags: Vec<&str> = tag.split('-').collect();
    for subtag in &subtags {
        if subtag.is_empty()
            || subtag.len() > 8
            || !subtag.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(language_error(
                tag,
                format!("`{subtag}` is not a subtag (1 to 8 letters or digits, separated by `-`)"),
            ));
        }
    }
    let lower: Vec<String> = subtags.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut out: Vec<String> = Vec::with_capacity(lower.len());
    let mut rest = lower.iter().map(String::as_str).peekable();

    let Some(language) = rest.next() else {
        return Err(language_error(tag, "must not be empty"));
    };
    if language == "x" {
        private_use(tag, language, &mut rest, &mut out)?;
    } else {
        if !(is_alpha(language) && (2..=3).contains(&language.len())) {
            return Err(language_error(
                tag,
                format!(
                    "`{language}` is not a language subtag (2 or 3 letters, such as `ar` or `en`)"
                ),
            ));
        }
        out.push(language.to_owned());
        // extlang: up to three 3-letter subtags after a 2-3 letter language.
        let mut extlangs = 0;
        while let Some(&next) = rest.peek() {
            if extlangs < 3 && next.len() == 3 && is_alpha(next) {
                out.push(next.to_owned());
                extlangs += 1;
                rest.next();
            } else {
                break;
            }
        }
        // script
        if let Some(&next) = rest.peek() {
            if next.len() == 4 && is_alpha(next) {
                out.push(title_case(next));
                rest.next();
            }
        }
        // region
        if let Some(&next) = rest.peek() {
            if (next.len() == 2 && is_alpha(next)) || (next.len() == 3 && is_digit(next)) {
                out.push(next.to_ascii_uppercase());
                rest.next();
            }
        }
        // variants
        let mut variants: Vec<&str> = Vec::new();
        while let Some(&next) = rest.peek() {
            if !is_variant(next) {
                break;
            }
            if variants.contains(&next) {
                return Err(language_error(tag, format!("variant `{next}` is repeated")));
            }
            variants.push(next);
            out.push(next.to_owned());
            rest.next();
        }
        // extensions
        let mut singletons: Vec<&str> = Vec::new();
        while let Some(&next) = rest.peek() {
            if next.len() != 1 || next == "x" {
                break;
            }
            if singletons.contains(&next) {
                return Err(language_error(
                    tag,
                    format!("extension `{next}` is repeated"),
                ));
            }
            singletons.push(next);
            out.push(next.to_owned());
            rest.next();
            let mut parts = 0;
            while let Some(&part) = rest.peek() {
                if part.len() < 2 {
                    break;
                }
                out.push(part.to_owned());
                parts += 1;
                rest.next();
            }
            if parts == 0 {
                return Err(language_error(
                    tag,
                    format!("extension `{next}` needs at least one subtag of 2 to 8 characters"),
                ));
            }
        }
        // private use
        if let Some(&next) = rest.peek() {
            if next == "x" {
                rest.next();
                private_use(tag, next, &mut rest, &mut out)?;
            }
        }
    }
    if let Some(extra) = rest.next() {
        return Err(language_error(
            tag,
            format!("`{extra}` is not valid at this position"),
        ));
    }
    Ok(out.join("-"))
}

/// Consumes the subtags after an `x` singleton (at least one is required).
fn private_use<'a>(
    tag: &str,
    singleton: &str,
    rest: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
    out: &mut Vec<String>,
) -> Result<(), DomainError> {
    out.push(singleton.to_owned());
    let mut parts = 0;
    for part in rest.by_ref() {
        out.push(part.to_owned());
        parts += 1;
    }
    if parts == 0 {
        return Err(language_error(
            tag,
            "private use `x` needs at least one subtag",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- time zones

/// Checks an IANA time zone name (zones and their aliases, `UTC`, `Etc/*`) against the tz
/// database list in [`crate::tz_names`]. Matching is exact first, then ASCII case-insensitive;
/// the result is the name as the database spells it (`europe/paris` gives `Europe/Paris`).
pub fn time_zone(raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    if let Ok(index) = TZ_NAMES.binary_search(&name) {
        if let Some(found) = TZ_NAMES.get(index) {
            return Ok((*found).to_owned());
        }
    }
    TZ_NAMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .map(|known| (*known).to_owned())
        .ok_or_else(|| DomainError::InvalidTimeZone {
            value: name.chars().take(64).collect(),
        })
}

// ---------------------------------------------------------------- contact points

fn contact_error(kind: &'static str, value: &str, reason: impl Into<String>) -> DomainError {
    DomainError::InvalidContactPoint {
        kind,
        value: value.chars().take(320).collect(),
        reason: reason.into(),
    }
}

/// Most characters in an email address.
pub const EMAIL_MAX: usize = 254;

/// A pragmatic email check, returning the address lower-cased: one `@`; a local part of 1 to
/// 64 of the RFC 5322 `atext` characters and dots (no leading, trailing or double dot); a domain
/// of at least two dot-separated labels of 1 to 63 letters, digits or hyphens (no hyphen at
/// either end), whose last label is not all digits. ASCII only (internationalised domains go in
/// their `xn--` form); quoted local parts and IP literals are refused.
pub fn email(raw: &str) -> Result<String, DomainError> {
    let address = raw.trim().to_ascii_lowercase();
    let fail = |reason: &str| contact_error("email", raw.trim(), reason);
    if address.len() > EMAIL_MAX {
        return Err(fail("must be at most 254 characters"));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(fail("needs an `@`"));
    };
    if domain.contains('@') {
        return Err(fail("has more than one `@`"));
    }
    if local.is_empty() || local.len() > 64 {
        return Err(fail("the part before `@` must be 1 to 64 characters"));
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    if !local.bytes().all(|b| atext(b) || b == b'.') {
        return Err(fail(
            "the part before `@` holds a character email does not allow",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(fail("dots in the part before `@` must separate words"));
    }
    if domain.is_empty() || domain.len() > 253 {
        return Err(fail("the domain must be 1 to 253 characters"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(fail("the domain needs a dot, as in `example.com`"));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(fail(
                "each part of the domain must be 1 to 63 letters, digits or inner hyphens",
            ));
        }
    }
    if labels.last().is_some_and(|tld| is_digit(tld)) {
        return Err(fail("the domain cannot end in a number"));
    }
    Ok(address)
}

/// Fewest digits in an accepted phone number (after the `+`).
pub const PHONE_MIN_DIGITS: usize = 8;
/// Most digits in an E.164 phone number.
pub const PHONE_MAX_DIGITS: usize = 15;

/// An E.164 phone number, normalised to `+` and 8 to 15 digits (the first not 0). The input
/// starts with `+` or the international prefix `00`; spaces, hyphens, dots, slashes and
/// parentheses between digits are dropped.
pub fn phone(raw: &str) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    let fail = |reason: &str| contact_error("phone", trimmed, reason);
    let compact: String = trimmed
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '-' | '.' | '/' | '(' | ')'))
        .collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest
    } else {
        return Err(fail(
            "must start with `+` (or `00`) and the country code, as in `+966 50 123 4567`",
        ));
    };
    if !is_digit(digits) {
        return Err(fail("holds characters other than digits and separators"));
    }
    if !(PHONE_MIN_DIGITS..=PHONE_MAX_DIGITS).contains(&digits.len()) {
        return Err(fail("must have 8 to 15 digits after the `+`"));
    }
    if digits.starts_with('0') {
        return Err(fail("a country code does not start with 0"));
    }
    Ok(format!("+{digits}"))
}

/// Most characters in the network part of a handle.
pub const NETWORK_MAX: usize = 32;
/// Most characters in the handle part of a handle.
pub const HANDLE_MAX: usize = 256;

/// A social handle or messaging id written `network:handle` (`x:@amina`, `whatsapp:+9665...`,
/// `telegram:amina_k`). The network is 1 to 32 of `[a-z0-9._-]` starting with a letter, and is
/// lower-cased; the handle is 1 to 256 characters without spaces or control characters, and is
/// kept as given.
pub fn handle(kind: ContactKind, raw: &str) -> Result<String, DomainError> {
    let label = match kind {
        ContactKind::Messaging => "messaging",
        _ => "social",
    };
    let trimmed = raw.trim();
    let fail = |reason: &str| contact_error(label, trimmed, reason);
    let Some((network, id)) = trimmed.split_once(':') else {
        return Err(fail("must be written `network:handle`, as in `x:@amina`"));
    };
    let network = network.to_ascii_lowercase();
    let network_ok = !network.is_empty()
        && network.len() <= NETWORK_MAX
        && network
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase())
        && network
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !network_ok {
        return Err(fail(
            "the network must be 1 to 32 letters, digits, `.`, `_` or `-`, starting with a letter",
        ));
    }
    let length = id.chars().count();
    if length == 0 || length > HANDLE_MAX {
        return Err(fail("the handle must be 1 to 256 characters"));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail("the handle cannot hold spaces or control characters"));
    }
    Ok(format!("{network}:{id}"))
}

/// Checks a contact point by its kind and returns it normalised.
pub fn contact_point(point: &ContactPoint) -> Result<ContactPoint, DomainError> {
    let value = match point.kind {
        ContactKind::Email => email(&point.value)?,
        ContactKind::Phone => phone(&point.value)?,
        ContactKind::Social | ContactKind::Messaging => handle(point.kind, &point.value)?,
    };
    Ok(ContactPoint {
        kind: point.kind,
        value,
    })
}

// ---------------------------------------------------------------- money, scores, rewards

/// An ISO 4217 currency code: three ASCII letters, returned upper-cased (`sar` gives `SAR`).
/// Syntactic only: the code is not checked against the ISO list.
pub fn currency(raw: &str) -> Result<String, DomainError> {
    let code = raw.trim();
    if code.len() == 3 && is_alpha(code) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(DomainError::InvalidCurrency {
            value: code.chars().take(16).collect(),
        })
    }
}

/// The scale of a score: its name and inclusive bounds (CSAT 1-5, NPS 0-10, CES 1-7).
pub fn score_scale(score: Score) -> (&'static str, u8, u8) {
    match score {
        Score::Csat(_) => ("CSAT", 1, 5),
        Score::Nps(_) => ("NPS", 0, 10),
        Score::Ces(_) => ("CES", 1, 7),
    }
}

/// Checks that a score lies on its scale.
pub fn score(score: Score) -> Result<Score, DomainError> {
    let value = match score {
        Score::Csat(v) | Score::Nps(v) | Score::Ces(v) => v,
    };
    let (scale, min, max) = score_scale(score);
    if (min..=max).contains(&value) {
        Ok(score)
    } else {
        Err(DomainError::ScoreOutOfRange {
            scale,
            value,
            min,
            max,
        })
    }
}

/// Checks a reward: points above zero, a voucher above zero in a valid currency (normalised).
pub fn reward(reward: &Reward) -> Result<Reward, DomainError> {
    match reward {
        Reward::Kudos => Ok(Reward::Kudos),
        Reward::Points(0) => Err(DomainError::InvalidReward {
            reason: "points must be above zero".to_owned(),
        }),
        Reward::Points(points) => Ok(Reward::Points(*points)),
        Reward::Voucher {
            amount_minor: 0, ..
        } => Err(DomainError::InvalidReward {
            reason: "a voucher must be worth more than zero".to_owned(),
        }),
        Reward::Voucher {
            amount_minor,
            currency: code,
        } => Ok(Reward::Voucher {
            amount_minor: *amount_minor,
            currency: currency(code)?,
        }),
    }
}
