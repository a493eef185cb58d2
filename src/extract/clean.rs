//! Line-level clean-up after emission: boilerplate lines (share bars, follow-us and newsletter
//! prompts, player errors, "read also" inserts, copyright), bylines/dates repeated at the top of the
//! body, duplicates. Only short lines are ever tested, so prose is never dropped by a phrase match.

use super::text::{char_len, ends_like_sentence, fold, Para, ParaKind};
use foldhash::{HashSet, HashSetExt};
use regex::{Regex, RegexBuilder};
use std::sync::LazyLock;

/// Lines (short ones only) that are boilerplate wherever they appear. Multilingual.
/// Lazy-DFA cache per regex and per thread that uses it: the default (2 MiB) for every regex kept
/// ~13 MB of a worker's heap in these caches (heaptrack); lines are short, so a small cache costs no
/// measurable speed for the small regexes.
const DFA_CACHE_BYTES: usize = 256 * 1024;
/// The boilerplate regex is the exception: its many `.*phrase.*` alternatives need many DFA states,
/// and at 256 KiB the cache was cleared and rebuilt over and over (regex-automata's determinizer was
/// 7 % of aeb-dev's profile): 2 MiB (one cache per extraction thread) took aeb-dev from 3.38 to 3.06
/// ms/page (`extract_corpus --quiet`, quality profile, same machine).
const BOILER_DFA_CACHE_BYTES: usize = 2 * 1024 * 1024;

/// A boilerplate phrase only removes a line up to this long (a "Share" button, a reprint notice);
/// a paragraph that mentions one is story text.
const BOILER_LINE_MAX_CHARS: u32 = 160;
/// A title/byline/date/reading-time line at the top or bottom of the body is at most this long…
const META_LINE_MAX_CHARS: u32 = 100;
/// …and, when it ends like a sentence, at most this long (a short dateline, not a sentence)…
const META_SENTENCE_MAX_CHARS: u32 = 30;
/// …and a byline or date line has at most this many words.
const META_LINE_MAX_WORDS: usize = 10;
/// At most this many such lines are trimmed from the top (title, byline, date, reading time, …).
const LEAD_META_MAX_LINES: usize = 6;
/// A paragraph this long is said once: a repeat is a layout's second copy. Shorter lines may
/// recur (a recipe's line under each meal, "Pros"/"Cons" per product).
const REPEAT_MIN_CHARS: u32 = 60;

static BOILER: LazyLock<Regex> = LazyLock::new(|| {
    RegexBuilder::new(concat!(
        r"(?i)^(?:",
        r"(?:share|tweet|email|e-mail|print|facebook|twitter|linkedin|whatsapp|pinterest|reddit|telegram|copy link|flipboard|messenger|sms|x)(?:\s*(?:this|on|via|story|article|page))*\s*[:!.]?",
        r"|share (?:this|on|via)(?-u:\b).*|share (?:article|story)(?-u:\b).*",
        r"|.*(?-u:\b)follow (?:us|me)(?-u:\b).*",
        r"|.*(?-u:\b)join (?:our|us on|the)(?-u:\b).*(?-u:\b)(?:channel|community|group|newsletter|whatsapp|telegram|youtube|discord)(?-u:\b).*",
        r"|.*(?-u:\b)(?:sign up|subscribe)(?-u:\b).*(?-u:\b)(?:newsletter|updates|inbox|email|channel|alerts)(?-u:\b).*",
        r"|.*(?-u:\b)newsletter(?-u:\b).*",
        r"|.*(?-u:\b)please try again(?-u:\b).*|.*something went wrong.*|.*(?-u:\b)(?:video|player|media) (?:is )?(?:unavailable|could not be loaded|error)(?-u:\b).*",
        r"|.*(?:read also|also read|read more|see also|related(?: articles| stories| content| posts| news| reading| coverage)?|recommended(?: for you| reading| stories)?|more from(?-u:\b).*|more on this(?: story)?|you may also like|you might also like|more(?: \S+){0,3} stories|most popular|most read|trending(?: now)?)\s*(?:[:：\-–—»|].*|\.{2,}|…)?",
        r"|advertisement|advert|sponsored(?: content)?|ad|ads|реклама|скрыть рекламу|publicidade|publicidad|anzeige|werbung|publicité|pubblicità|iklan|إعلان",
        r"|(?:©|\(c\)|copyright(?-u:\b)).*|.*(?-u:\b)all rights reserved(?-u:\b).*",
        r"|.*(?-u:\b)click here(?-u:\b).*|.*(?-u:\b)(?:leave|post|add|view|show|load)(?-u:\b).*(?-u:\b)comments?(?-u:\b).*|\d*\s*comments?(?:\s*\(\S*\))?|.*(?-u:\b)share (?:it|this(?: story| article)?) with(?-u:\b).*",
        r"|(?:tags?|topics?|filed under|categories|category|keywords)\s*[:：].*",
        r"|\(?(?:reporting|editing|writing) by(?-u:\b).*",
        // Reprint notices, paywall promos, view counters, pingbacks, closed comment threads.
        r"|.*(?-u:\b)for (?:your )?personal,? non-?commercial use(?-u:\b).*|.*(?-u:\b)(?:order|purchase) (?:presentation-ready |reprints?|copies)(?-u:\b).*",
        r"|.*(?-u:\b)subscribe (?:now|today)(?-u:\b).*|.*(?-u:\b)(?:unlimited|full|digital) access(?-u:\b).*(?:subscri|per (?:week|month)|a (?:week|month)|offer|trial).*|.*(?-u:\b)already (?:a )?subscriber\??.*",
        r"|[\d.,\s]+[km]?\s*(?:views?|reads?|visits?|vues|aufrufe|visualizaciones|просмотр\S*|مشاهدة)",
        r"|(?:pingbacks?|trackbacks?)(?:\s*[:：].*)?|comments? (?:are|is) (?:now )?(?:closed|disabled|turned off)\.?",
        r"|.*(?-u:\b)(?:we use cookies|this (?:web)?site uses cookies|cookie policy|cookie settings|accept (?:all )?cookies|use of cookies|manage consent|privacy preferences)(?-u:\b).*",
        r"|(?:previous|next|prev)(?: article| post| story| page)?(?:\s*[:：»«].*)?",
        r"|back to top|skip to (?:main )?content|loading(?: \S+)?\s*(?:\.*|…)|continue reading.*|listen to (?:this )?article.*",
        r"|table of contents|inhaltsverzeichnis|sommaire|содержание|目次|目录|view (?:this )?(?:post|profile) on instagram",
        r"|(?:اقرأ|إقرأ)\s*(?:أيضا|أيضاً|ايضا|المزيد).*|تابعونا.*|تابعوا.*|شارك(?:وا)?.*|انضم.*(?:قناة|واتساب|تيليجرام|يوتيوب).*",
        r"|بیشتر بخوانید.*|همچنین بخوانید.*|ما را دنبال کنید.*",
        r"|קראו עוד.*|עוד באתר.*",
        r"|читайте (?:также|еще|тоже).*|подписывайтесь.*|подпишитесь.*|поделиться.*",
        r"|lesen sie (?:auch|mehr).*|lire aussi.*|à lire aussi.*|leia (?:também|mais).*|veja também.*|lee también.*|leer más.*|baca juga.*|baca selengkapnya.*|leggi anche.*",
        r"|相关(?:阅读|新闻|文章).*|延伸阅读.*|関連記事.*|あわせて読みたい.*|관련\s*기사.*|더보기",
        r")$"
    ))
    .dfa_size_limit(BOILER_DFA_CACHE_BYTES)
    .build()
    .expect("static regex")
});

static BYLINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:by|written by|posted by|published by|von|par|por|di|door|автор)\s*[:：]?\s+\S",
    )
    .expect("static regex")
});
static DATEISH: LazyLock<Regex> = LazyLock::new(|| {
    RegexBuilder::new(concat!(
        r"(?i)(?:(?-u:\b)(?:19|20)\d{2}(?-u:\b)|(?-u:\b)\d{1,2}[:.]\d{2}(?-u:\b)|(?-u:\b)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|\d\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|",
        r"(?-u:\b)(?:updated|published|posted|modified)(?-u:\b)|(?-u:\b)\d+\s*(?:min|minute|hour|day)s?(?-u:\b)|ago(?-u:\b)|(?-u:\b)read(?:ing)? time(?-u:\b)|(?-u:\b)min read(?-u:\b)|",
        r"\d{1,4}\s*[年月日]|\d+\s*(?:دقيقة|ساعة|يوم)|منذ)"
    ))
    .dfa_size_limit(DFA_CACHE_BYTES)
    .build()
    .expect("static regex")
});

fn is_boiler_line(t: &str) -> bool {
    let n = char_len(t);
    n <= BOILER_LINE_MAX_CHARS && BOILER.is_match(t.trim())
}

fn looks_like_meta_line(t: &str, title_fold: &str) -> bool {
    let n = char_len(t);
    if n > META_LINE_MAX_CHARS || (ends_like_sentence(t) && n > META_SENTENCE_MAX_CHARS) {
        return false;
    }
    let f = fold(t);
    if !title_fold.is_empty() && f == title_fold {
        return true;
    }
    let words = t.split_whitespace().count();
    words <= META_LINE_MAX_WORDS && (BYLINE.is_match(t) || DATEISH.is_match(t))
}

/// Clean the emitted paragraphs and join them into the final text.
pub fn finish(paras: Vec<Para>, title: Option<&str>) -> String {
    let title_fold = title.map(fold).unwrap_or_default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept: Vec<Para> = Vec::with_capacity(paras.len());
    let mut last_key = String::new();
    for p in paras {
        if p.kind != ParaKind::Pre && is_boiler_line(&p.text) {
            continue;
        }
        let key = fold(&p.text);
        if key.is_empty() {
            continue;
        }
        // Long paragraphs are never repeated; short lines may be (a recipe's "Eat every 2-3 hours"
        // under each meal, "Pros"/"Cons" per product), unless right after the same line.
        let repeated =
            key == last_key || (char_len(&p.text) >= REPEAT_MIN_CHARS && !seen.insert(key.clone()));
        if repeated {
            continue;
        }
        last_key = key;
        kept.push(p);
    }
    // Lead junk: title, byline, dates, reading time repeated at the top of the body.
    let mut start = 0;
    while start < kept.len() && start < LEAD_META_MAX_LINES {
        let p = &kept[start];
        if p.kind != ParaKind::Pre && looks_like_meta_line(&p.text, &title_fold) {
            start += 1;
        } else {
            break;
        }
    }
    // Trailing junk: short byline/date lines and dangling headings at the end.
    let mut end = kept.len();
    while end > start {
        let p = &kept[end - 1];
        let dangling_heading =
            p.kind == ParaKind::Heading && end < kept.len() + 1 && end == kept.len();
        if p.kind != ParaKind::Pre
            && (looks_like_meta_line(&p.text, &title_fold) || dangling_heading)
        {
            end -= 1;
        } else {
            break;
        }
    }
    let mut out = String::new();
    let mut prev: Option<ParaKind> = None;
    for p in &kept[start..end] {
        if let Some(k) = prev {
            if k == ParaKind::Item && p.kind == ParaKind::Item {
                out.push('\n');
            } else {
                out.push_str("\n\n");
            }
        }
        out.push_str(&p.text);
        prev = Some(p.kind);
    }
    out
}

/// Text gathered from across the page (the wide path, the page's prose paragraphs, the `<noscript>`
/// version, script data) with every line kept once: a line met twice there is one element rendered
/// twice (a responsive layout's mobile and desktop copies, a label under every variant). Lines that
/// may be code (indented, or without a letter: `}`, `]);`) are kept as they are. The article path's
/// single container keeps its repeats (a recipe's "Eat every 2-3 hours" under each meal).
/// Measured out of fold (folds 3-4, tuned on 0-2; `scripts/extract-quality.sh --folds 5 --tune 0,1,2`):
/// all-pages word F1 +0.0039, articles +0.0010 (in fold +0.0022 / +0.0006); aeb-dev unchanged.
pub fn once_each_line(text: &str) -> String {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.split('\n') {
        let key = line.trim();
        if key.is_empty() {
            blank += 1;
            continue;
        }
        let code = line.starts_with(char::is_whitespace) || !key.chars().any(char::is_alphabetic);
        if !code && !seen.insert(key) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(kind: ParaKind, text: &str) -> Para {
        Para {
            kind,
            text: text.to_string(),
        }
    }

    #[test]
    fn gathered_text_says_each_line_once_but_keeps_code() {
        let text = "Fit\nRegular\n\nFit\nRegular\n\nWeight\n\n}\n}\n    x = 1\n    x = 1";
        assert_eq!(
            once_each_line(text),
            "Fit\nRegular\n\nWeight\n\n}\n}\n    x = 1\n    x = 1"
        );
    }

    #[test]
    fn long_paragraphs_once_short_lines_as_often_as_the_page_has_them() {
        let long =
            "This paragraph is long enough to count as prose that a page never repeats on purpose.";
        let paras = vec![
            para(ParaKind::Heading, "Meal 1"),
            para(ParaKind::Para, "Eat every 2-3 hours"),
            para(ParaKind::Para, long),
            para(ParaKind::Heading, "Meal 2"),
            para(ParaKind::Para, "Eat every 2-3 hours"),
            para(ParaKind::Para, "Eat every 2-3 hours"),
            para(ParaKind::Para, long),
            para(
                ParaKind::Para,
                "Portion: one cup, with a spoon of olive oil.",
            ),
        ];
        let text = finish(paras, None);
        assert_eq!(text.matches("Eat every 2-3 hours").count(), 2, "{text}");
        assert_eq!(text.matches(long).count(), 1, "{text}");
    }

    #[test]
    fn boiler_lines() {
        for l in [
            "Share this article",
            "Follow us on Twitter",
            "Join our WhatsApp channel for the latest news",
            "Sign up for our daily newsletter",
            "Please try again later.",
            "Read also: Something happened elsewhere",
            "© 2024 Example Media. All rights reserved.",
            "اقرأ أيضا: خبر آخر",
            "Читайте также: другие новости",
            "Tags: politics, economy",
            "Advert",
            "You may also like...",
            "(Reporting by Jane Doe; editing by John Roe)",
            "This copy is for your personal, non-commercial use only. To order presentation-ready copies, contact us.",
            "Subscribe now to get unlimited access to all our journalism for just one pound a week.",
            "1,234 views",
            "Pingback: Weekly links roundup",
            "Comments are closed.",
            "More Great WIRED Stories",
            "Like this story? Share it with a friend!",
            "Comments (+)",
            "Loading paragraph...",
            "Table of Contents",
            "View this post on Instagram",
        ] {
            assert!(is_boiler_line(l), "{l}");
        }
        for l in [
            "The minister said the plan would be shared with parliament next week.",
            "Advertisers are worried about the new rules.",
            "He followed the story closely.",
            "Additional reporting by Priya Shah in Leeds.",
            "The museum had 1,234 visitors in its first week.",
        ] {
            assert!(!is_boiler_line(l), "{l}");
        }
    }
}
