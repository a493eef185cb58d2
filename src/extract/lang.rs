//! Language: declared (`<html lang>`, JSON-LD `inLanguage`, Content-Language, og:locale) checked
//! against and filled from the text itself (whatlang), as a BCP 47 tag.

/// ISO 639-3 (whatlang) -> BCP 47 primary subtag.
fn iso3_to_bcp47(code: &str) -> &'static str {
    match code {
        "epo" => "eo",
        "eng" => "en",
        "rus" => "ru",
        "cmn" => "zh",
        "spa" => "es",
        "por" => "pt",
        "ita" => "it",
        "ben" => "bn",
        "fra" => "fr",
        "deu" => "de",
        "ukr" => "uk",
        "kat" => "ka",
        "ara" => "ar",
        "hin" => "hi",
        "jpn" => "ja",
        "heb" => "he",
        "yid" => "yi",
        "pol" => "pl",
        "amh" => "am",
        "jav" => "jv",
        "kor" => "ko",
        "nob" => "nb",
        "dan" => "da",
        "swe" => "sv",
        "fin" => "fi",
        "tur" => "tr",
        "nld" => "nl",
        "hun" => "hu",
        "ces" => "cs",
        "ell" => "el",
        "bul" => "bg",
        "bel" => "be",
        "mar" => "mr",
        "kan" => "kn",
        "ron" => "ro",
        "slv" => "sl",
        "hrv" => "hr",
        "srp" => "sr",
        "mkd" => "mk",
        "lit" => "lt",
        "lav" => "lv",
        "est" => "et",
        "tam" => "ta",
        "vie" => "vi",
        "urd" => "ur",
        "tha" => "th",
        "guj" => "gu",
        "uzb" => "uz",
        "pan" => "pa",
        "aze" => "az",
        "ind" => "id",
        "tel" => "te",
        "pes" => "fa",
        "mal" => "ml",
        "ori" => "or",
        "mya" => "my",
        "nep" => "ne",
        "sin" => "si",
        "khm" => "km",
        "tuk" => "tk",
        "aka" => "ak",
        "zul" => "zu",
        "sna" => "sn",
        "afr" => "af",
        "lat" => "la",
        "slk" => "sk",
        "cat" => "ca",
        "tgl" => "tl",
        "hye" => "hy",
        _ => "und",
    }
}

/// A declared language tag longer than this is no BCP 47 tag (the longest registered forms with
/// extensions stay under it).
const MAX_TAG_BYTES: usize = 35;
/// whatlang's answer counts when it calls itself reliable or is over this confident.
const DETECT_MIN_CONFIDENCE: f64 = 0.5;
/// Detection overrides a declared language of another family only on this many chars of text (a
/// short text is detected badly).
const OVERRIDE_MIN_CHARS: usize = 100;

/// Normalise a declared tag ("en_US", "EN-us", "ar-EG") to BCP 47 casing ("en-US").
pub fn normalize_tag(raw: &str) -> Option<String> {
    let raw = raw.split([',', ';']).next()?.trim();
    if raw.is_empty() || raw.len() > MAX_TAG_BYTES {
        return None;
    }
    let mut out = String::new();
    for (i, part) in raw.split(['-', '_']).enumerate() {
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
            return if i == 0 { None } else { Some(out) };
        }
        if i == 0 {
            if !(2..=3).contains(&part.len()) || !part.chars().all(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            out.push_str(&part.to_ascii_lowercase());
        } else {
            out.push('-');
            match part.len() {
                2 => out.push_str(&part.to_ascii_uppercase()),
                4 => {
                    let mut c = part.chars();
                    if let Some(f) = c.next() {
                        out.push(f.to_ascii_uppercase());
                        out.extend(c.map(|x| x.to_ascii_lowercase()));
                    }
                }
                _ => out.push_str(&part.to_ascii_lowercase()),
            }
        }
    }
    // Legacy primary tags.
    let out = match out.split('-').next() {
        Some("iw") => out.replacen("iw", "he", 1),
        Some("in") => out.replacen("in", "id", 1),
        Some("ji") => out.replacen("ji", "yi", 1),
        _ => out,
    };
    Some(out)
}

fn primary(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// Languages that whatlang confuses with one another: a declared one of the group is trusted.
fn same_family(a: &str, b: &str) -> bool {
    const GROUPS: &[&[&str]] = &[
        &["nb", "no", "nn", "da", "sv"],
        &["hr", "sr", "bs", "sl"],
        &["id", "ms", "tl", "jv"],
        &["fa", "ar", "ur", "ps"],
        &["zh", "ja"],
        &["hi", "mr", "ne"],
        &["ru", "uk", "be", "bg", "mk"],
        &["es", "pt", "gl", "ca", "it"],
        &["cs", "sk"],
    ];
    a == b || GROUPS.iter().any(|g| g.contains(&a) && g.contains(&b))
}

/// Decide the language from declarations and the text.
pub fn decide(declared: &[Option<String>], text: &str) -> Option<String> {
    // First declaration wins; a later one with the same primary language but more detail
    // (`en` then `en-GB`) refines it.
    let tags: Vec<String> = declared
        .iter()
        .flatten()
        .filter_map(|d| normalize_tag(d))
        .collect();
    let declared: Option<String> = tags.first().map(|first| {
        tags.iter()
            .find(|t| primary(t) == primary(first) && t.len() > first.len())
            .unwrap_or(first)
            .clone()
    });
    // Detect on a bounded sample.
    let mut end = text.len().min(1500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let sample = &text[..end];
    let detected = whatlang::detect(sample)
        .filter(|i| i.is_reliable() || i.confidence() > DETECT_MIN_CONFIDENCE)
        .map(|i| {
            let mut tag = iso3_to_bcp47(i.lang().code()).to_string();
            if tag == "zh" {
                // Script subtag from the characters: Traditional vs Simplified is not decidable
                // cheaply, so leave plain "zh".
                tag = "zh".into();
            }
            tag
        })
        .filter(|t| t != "und");
    match (declared, detected) {
        (Some(d), Some(t)) => {
            if same_family(primary(&d), &t) || sample.chars().count() < OVERRIDE_MIN_CHARS {
                Some(d)
            } else {
                Some(t)
            }
        }
        (Some(d), None) => Some(d),
        (None, Some(t)) => Some(t),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(normalize_tag("en_us").as_deref(), Some("en-US"));
        assert_eq!(normalize_tag("zh-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(normalize_tag("iw").as_deref(), Some("he"));
        assert_eq!(normalize_tag("").as_deref(), None);
    }

    #[test]
    fn wrong_declaration_is_fixed() {
        let text = "Le gouvernement a annoncé mardi une série de mesures destinées à soutenir les ménages face à la hausse des prix de l'énergie, une décision attendue depuis plusieurs semaines par les associations.";
        assert_eq!(decide(&[Some("en".into())], text).as_deref(), Some("fr"));
        assert_eq!(
            decide(&[Some("fr-CA".into())], text).as_deref(),
            Some("fr-CA")
        );
    }
}
