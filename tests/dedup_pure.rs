//! SimHash in every script, on generated texts: a copy with one word changed stays within the default
//! near-duplicate distance, unrelated texts are far apart. Also: the pure dedup files stay pure.

use paperboy::dedup::{content_hash, hamming, simhash, Bands};

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// A script: how to make one word, and whether words are separated by spaces.
struct Script {
    name: &'static str,
    /// (first code point, count) of the letters used.
    letters: (u32, u32),
    /// Combining marks added after some letters (Devanagari vowel signs).
    marks: Option<(u32, u32)>,
    spaced: bool,
}

const SCRIPTS: &[Script] = &[
    Script {
        name: "latin",
        letters: (0x61, 26),
        marks: None,
        spaced: true,
    },
    Script {
        name: "cyrillic",
        letters: (0x430, 32),
        marks: None,
        spaced: true,
    },
    Script {
        name: "greek",
        letters: (0x3B1, 25),
        marks: None,
        spaced: true,
    },
    Script {
        name: "arabic",
        letters: (0x628, 19),
        marks: None,
        spaced: true,
    },
    Script {
        name: "hebrew",
        letters: (0x5D0, 27),
        marks: None,
        spaced: true,
    },
    Script {
        name: "devanagari",
        letters: (0x915, 37),
        marks: Some((0x93E, 15)),
        spaced: true,
    },
    Script {
        name: "hangul",
        letters: (0xAC00, 11172),
        marks: None,
        spaced: true,
    },
    Script {
        name: "chinese",
        letters: (0x4E00, 3000),
        marks: None,
        spaced: false,
    },
    Script {
        name: "japanese kana",
        letters: (0x3041, 86),
        marks: None,
        spaced: false,
    },
    Script {
        name: "thai",
        letters: (0xE01, 46),
        marks: None,
        spaced: false,
    },
];

fn vocabulary(s: &Script, rng: &mut Rng) -> Vec<String> {
    (0..400)
        .map(|_| {
            let len = if s.spaced {
                2 + rng.below(7)
            } else {
                1 + rng.below(2)
            };
            let mut w = String::new();
            for _ in 0..len {
                w.push(char::from_u32(s.letters.0 + rng.below(s.letters.1)).unwrap());
                if let Some((m, n)) = s.marks {
                    if rng.below(2) == 0 {
                        w.push(char::from_u32(m + rng.below(n)).unwrap());
                    }
                }
            }
            w
        })
        .collect()
}

/// Paragraphs of `words` words from `vocab`, as lines.
fn text(vocab: &[String], spaced: bool, words: usize, rng: &mut Rng) -> Vec<String> {
    let per_line = if spaced { 40 } else { 60 };
    let mut lines = Vec::new();
    let mut line: Vec<String> = Vec::new();
    for _ in 0..words {
        line.push(vocab[rng.below(vocab.len() as u32) as usize].clone());
        if line.len() == per_line {
            lines.push(line.join(if spaced { " " } else { "" }));
            line.clear();
        }
    }
    if !line.is_empty() {
        lines.push(line.join(if spaced { " " } else { "" }));
    }
    lines
}

#[test]
fn simhash_separates_near_copies_from_unrelated_texts_in_every_script() {
    let near_limit = 3; // the default dedup.near_distance
    for script in SCRIPTS {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(script.letters.0));
        let vocab = vocabulary(script, &mut rng);
        let words = if script.spaced { 600 } else { 1200 };
        let original = text(&vocab, script.spaced, words, &mut rng);
        let unrelated = text(&vocab, script.spaced, words, &mut rng);

        // Near copy: one word replaced in the middle of the text, plus a different headline line.
        let mut edited = original.clone();
        let mid = edited.len() / 2;
        let replacement = &vocab[0];
        let sep = if script.spaced { " " } else { "" };
        let mut parts: Vec<String> = if script.spaced {
            edited[mid].split(' ').map(str::to_string).collect()
        } else {
            edited[mid].chars().map(String::from).collect()
        };
        let at = parts.len() / 2;
        parts[at] = replacement.clone();
        edited[mid] = parts.join(sep);
        edited.insert(0, vocab[1..4].join(sep));

        let a = simhash(&original.join("\n"));
        let b = simhash(&edited.join("\n"));
        let c = simhash(&unrelated.join("\n"));
        let near = hamming(a, b);
        let far = hamming(a, c);
        assert!(
            near <= near_limit,
            "{}: near copy at distance {near}",
            script.name
        );
        assert!(
            far >= 16,
            "{}: unrelated texts at distance {far}",
            script.name
        );
        // Near copies are found by the band index.
        let bands = Bands::for_distance(near_limit);
        assert!(
            bands.keys(a).zip(bands.keys(b)).any(|(x, y)| x == y),
            "{}: no shared band",
            script.name
        );
        // The exact hash tells them apart.
        assert_ne!(
            content_hash(&original.join("\n")),
            content_hash(&edited.join("\n"))
        );
    }
}

/// hash.rs and memory.rs are pure: no async runtime, broker or HTTP client.
#[test]
fn pure_dedup_files_import_no_runtime() {
    for file in ["src/dedup/hash.rs", "src/dedup/memory.rs"] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for banned in ["tokio", "lapin", "reqwest", "redis::"] {
                assert!(
                    !code.contains(banned),
                    "{file} must stay pure, but uses {banned}: {line}"
                );
            }
        }
    }
}
