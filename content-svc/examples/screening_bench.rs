//! Screening benchmark: a 20,000-character article against a 50,000-entry lexicon
//! (issue 10's targets: p99 ≤ 2 ms per screening, a reload of 50,000 entries ≤ 200 ms).
//!
//! ```sh
//! cargo run -p content-svc --release --example screening_bench
//! ```
//! The lexicon and the article are synthetic and deterministic (a fixed-seed
//! generator over common CJK characters, with hits, full-width letters, traditional
//! characters and inserted spaces mixed in), so runs are comparable.
// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use content_svc::domain::screening::{Entry, Screener};

const ENTRIES: usize = 50_000;
const ARTICLE_CHARS: usize = 20_000;
const RUNS: usize = 200;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn cjk(&mut self) -> char {
        // The 3,500 most common characters sit mostly in U+4E00..U+7FFF.
        char::from_u32(0x4E00 + (self.next() % 0x3200) as u32).unwrap_or('中')
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let categories = [
        "political",
        "violence",
        "vulgar",
        "advertising",
        "fraud",
        "wrong",
    ];
    let mut entries = Vec::with_capacity(ENTRIES);
    while entries.len() < ENTRIES {
        let len = 2 + (rng.next() % 5) as usize;
        let word: String = (0..len).map(|_| rng.cjk()).collect();
        let category = categories[(rng.next() % categories.len() as u64) as usize];
        if let Ok(entry) = Entry::parse(category, &word) {
            entries.push(entry);
        }
    }
    // Words the article will hide.
    let hidden = ["vpn翻墙", "代开发票", "再接再励"];
    for word in hidden {
        entries.push(Entry::parse("fraud", word).expect("valid"));
    }

    let mut article = String::with_capacity(ARTICLE_CHARS * 3);
    let mut chars = 0;
    while chars < ARTICLE_CHARS {
        match rng.next() % 400 {
            0 => article.push_str("ＶＰＮ 翻-牆"),
            1 => article.push_str("代 開 發票"),
            2 => article.push_str("再接再励"),
            3..=20 => article.push('，'),
            _ => article.push(rng.cjk()),
        }
        chars = article.chars().count();
    }

    let started = Instant::now();
    let screener = Screener::new(entries.clone());
    let build = started.elapsed();
    // A second build, as a reload does (the first warms the OpenCC table).
    let started = Instant::now();
    let _reloaded = Screener::new(entries);
    let reload = started.elapsed();

    let mut times = Vec::with_capacity(RUNS);
    let mut hits = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        hits = screener.screen("body", &article).len();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "lexicon: {} words; article: {ARTICLE_CHARS} characters; {hits} hits",
        screener.len()
    );
    println!("first build (with the t2s table): {build:?}; reload: {reload:?}");
    println!(
        "screening over {RUNS} runs: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
}
