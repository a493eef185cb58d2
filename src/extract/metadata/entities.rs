//! HTML character references that JSON-LD and doubly escaped attributes still carry.

/// The longest reference name decoded (`&#x1F600;` is 8): a longer "name" is plain text with `&`.
const MAX_REFERENCE_LEN: usize = 10;

/// Decode the character references that JSON-LD and doubly escaped attributes carry: numeric
/// (`&#038;`, `&#x2019;`) and the common named ones. Unknown names are kept as written.
pub fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&e| e > 0 && e <= MAX_REFERENCE_LEN)
            .and_then(|e| Some((char_reference(&rest[1..=e])?, e + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference names (`name` is what sits between `&` and `;`).
fn char_reference(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "lt" => '<',
        "gt" => '>',
        "nbsp" => ' ',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "bull" => '•',
        "middot" => '·',
        "raquo" => '»',
        "laquo" => '«',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        _ => return None,
    })
}
