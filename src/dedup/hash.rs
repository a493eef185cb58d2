//! PURE content hash of normalised text. (Placeholder: replaced by the dedup work.)

/// `blake3:<hex>` of the text, normalised (NFKC, case folded, whitespace collapsed).
pub fn content_hash(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let norm: String = text.nfkc().flat_map(char::to_lowercase).collect();
    let norm = norm.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("blake3:{}", blake3::hash(norm.as_bytes()).to_hex())
}
