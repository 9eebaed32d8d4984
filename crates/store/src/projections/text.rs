//! Owns text helpers shared by projections: Unicode-aware search folding and tokenising
//! (lower-case, Arabic diacritics and tatweel stripped, alef variants folded to bare alef,
//! common Latin diacritics folded by a small table), short summaries, and UTC time stamps for
//! human-readable summaries.

/// Longest token kept in a search index, in bytes.
pub const MAX_TOKEN_BYTES: usize = 64;
/// Most tokens indexed per name.
pub const MAX_TOKENS: usize = 16;

/// Whether `c` is dropped entirely when folding (Arabic harakat, superscript alef, tatweel,
/// combining diacritical marks).
fn is_stripped(c: char) -> bool {
    matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' | '\u{0300}'..='\u{036F}')
}

/// Folds one lower-case character; `None` means "keep as is".
fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'أ' | 'إ' | 'آ' | 'ٱ' => "ا",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// Splits `text` into folded word tokens, in order of appearance, without duplicates, at
/// most [`MAX_TOKENS`] of at most [`MAX_TOKEN_BYTES`] bytes each.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let finish = |current: &mut String, out: &mut Vec<String>| {
        if !current.is_empty() {
            let token = std::mem::take(current);
            if out.len() < MAX_TOKENS && !out.contains(&token) {
                out.push(token);
            }
        }
    };
    for c in text.chars() {
        for lower in c.to_lowercase() {
            if is_stripped(lower) {
                continue;
            }
            if !lower.is_alphanumeric() {
                finish(&mut current, &mut out);
                continue;
            }
            let piece_len = fold_char(lower).map_or(lower.len_utf8(), str::len);
            if current.len() + piece_len > MAX_TOKEN_BYTES {
                continue;
            }
            match fold_char(lower) {
                Some(folded) => current.push_str(folded),
                None => current.push(lower),
            }
        }
    }
    finish(&mut current, &mut out);
    out
}

/// `text` cut to at most `max_chars` characters, with `…` when cut.
pub fn short(text: &str, max_chars: usize) -> String {
    match cut_at(text, max_chars) {
        None => text.to_owned(),
        Some(at) => {
            let mut head = String::with_capacity(at + '…'.len_utf8());
            head.push_str(&text[..at]);
            head.push('…');
            head
        }
    }
}

/// [`short`], reusing `text`'s buffer (every timeline entry's opened text is shortened).
pub fn shorten(mut text: String, max_chars: usize) -> String {
    if let Some(at) = cut_at(&text, max_chars) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// Where `text` is cut to make room for `…` (the byte length of its first `max_chars - 1`
/// characters) when it has more than `max_chars` characters; `None` when it fits. A text of
/// at most `max_chars` bytes fits without counting.
fn cut_at(text: &str, max_chars: usize) -> Option<usize> {
    if text.len() <= max_chars {
        return None;
    }
    let Some(last_kept) = max_chars.checked_sub(1) else {
        return Some(0);
    };
    let mut starts = text.char_indices().map(|(at, _)| at);
    let cut = starts.nth(last_kept)?;
    starts.next().map(|_| cut)
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix time in milliseconds.
pub fn utc_minute(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let minute_of_day = millis.rem_euclid(86_400_000) / 60_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_latin_and_arabic() {
        assert_eq!(tokens("Mohammed Al-Fulan"), vec!["mohammed", "al", "fulan"]);
        assert_eq!(
            tokens("José  ÉLODIE straße"),
            vec!["jose", "elodie", "strasse"]
        );
        assert_eq!(tokens("مُحَمَّد أحمد"), vec!["محمد", "احمد"]);
        assert_eq!(tokens("إبراهيم آمنة"), vec!["ابراهيم", "امنة"]);
        assert_eq!(tokens("e\u{301}cole"), vec!["ecole"]);
        assert_eq!(tokens("  -- "), Vec::<String>::new());
        assert_eq!(tokens("a a a"), vec!["a"]);
        assert_eq!(tokens("山田 太郎"), vec!["山田", "太郎"]);
        let long = "x".repeat(200);
        assert_eq!(tokens(&long)[0].len(), MAX_TOKEN_BYTES);
    }

    /// What [`short`] did before it skipped counting: collect characters one by one.
    fn short_by_chars(text: &str, max_chars: usize) -> String {
        let mut chars = text.chars();
        let head: String = chars.by_ref().take(max_chars).collect();
        if chars.next().is_some() {
            let mut head: String = head.chars().take(max_chars.saturating_sub(1)).collect();
            head.push('…');
            head
        } else {
            head
        }
    }

    proptest::proptest! {
        #[test]
        fn short_cuts_as_counting_characters_does(
            text in "[a-zé…مُ山😀 ]{0,40}",
            max_chars in 0usize..45,
        ) {
            let expected = short_by_chars(&text, max_chars);
            proptest::prop_assert_eq!(short(&text, max_chars), expected.clone());
            proptest::prop_assert_eq!(shorten(text, max_chars), expected);
        }
    }

    #[test]
    fn short_and_time() {
        assert_eq!(short("", 0), "");
        assert_eq!(short("a", 0), "…");
        assert_eq!(short("héllo", 5), "héllo");
        assert_eq!(short("héllo!", 5), "héll…");
        assert_eq!(short("hello", 10), "hello");
        assert_eq!(short("hello world", 5), "hell…");
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(1_709_210_096_000), "2024-02-29 12:34 UTC");
        assert_eq!(utc_minute(-60_000), "1969-12-31 23:59 UTC");
        let _ = utc_minute(i64::MIN);
        let _ = utc_minute(i64::MAX);
    }
}
