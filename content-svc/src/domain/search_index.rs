//! The search index held in memory: a copy of `search_documents` (the words of each
//! document at their weight, and what a hit shows) that answers a query the way the
//! tiered statement of `store::search::search_sql` does, in microseconds instead of
//! a database round trip per stage. The database stays the truth: this copy is
//! loaded from it and kept in step with it (`app::search::LiveIndex`).
//!
//! Each word has two posting lists (articles, services: a search of services only
//! never reads the articles') of the documents holding it, in the order they were
//! added, each entry carrying the word's best weight in that document as a level: 3
//! in the title, 2 in the keywords (a service's keywords and synonyms, an article's
//! digest), 1 in the body only. A query's level in a document is the level of the
//! weakest word it needs there (an AND takes the lower level of its parts, an OR the
//! higher): exactly the tier of the statement (title, headline, whole document),
//! because a query without NOT matches the words of level ≥ n if and only if its
//! level is ≥ n.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::search::{Match, SearchFilter};

/// Whether a document is a directory service or a published article. Services sort
/// above articles, as `'service' > 'article'` does in the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocKind {
    Article,
    Service,
}

impl DocKind {
    /// The kind as stored and as the gRPC API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Article => "article",
            DocKind::Service => "service",
        }
    }

    /// The kind named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "article" => Some(DocKind::Article),
            "service" => Some(DocKind::Service),
            _ => None,
        }
    }
}

/// A document as the index receives it: what a hit shows, who sees it, and its words
/// by weight (a word may be in several lists; its best weight counts).
#[derive(Debug, Clone)]
pub struct IndexedDoc {
    pub kind: DocKind,
    pub ref_id: uuid::Uuid,
    pub accounts: Vec<String>,
    pub category: String,
    pub title: String,
    pub summary: String,
    pub url: String,
    pub enabled: bool,
    /// Words of the title (weight A).
    pub title_words: Vec<String>,
    /// Words of the keywords or digest (weight B).
    pub keyword_words: Vec<String>,
    /// Every word of the document, the title's and keywords' included.
    pub words: Vec<String>,
}

/// A document found, at the level the query matched it (3 title, 2 keywords, 1 body).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexHit {
    pub kind: DocKind,
    pub ref_id: uuid::Uuid,
    pub category: String,
    pub title: String,
    pub summary: String,
    pub url: String,
    pub level: u8,
}

/// A posting: the document's slot shifted left by two, its level in the low bits.
type Posting = u32;
const LEVEL_BITS: u32 = 2;
const LEVEL_MASK: u32 = (1 << LEVEL_BITS) - 1;
/// Slots are numbered from 0 and never reused until [`SearchIndex::compact`].
const SLOT_MAX: u32 = u32::MAX >> LEVEL_BITS;

fn posting(slot: u32, level: u8) -> Posting {
    (slot << LEVEL_BITS) | u32::from(level)
}

fn slot_of(posting: Posting) -> u32 {
    posting >> LEVEL_BITS
}

fn level_of(posting: Posting) -> u8 {
    // Masked to two bits, so the cast keeps every value.
    (posting & LEVEL_MASK) as u8
}

/// What a filter and the ranking read of a document, kept apart from what a hit
/// shows so a query's scan over its candidates stays in a small array.
#[derive(Debug, Clone, Copy)]
struct Meta {
    ref_id: uuid::Uuid,
    category: u32,
    accounts: u32,
    kind: DocKind,
    enabled: bool,
    live: bool,
}

/// What a hit shows besides the fields of [`Meta`].
#[derive(Debug)]
struct Shown {
    title: String,
    summary: String,
    url: String,
}

/// Values stored once and named by number (categories, lists of accounts).
#[derive(Debug, Default)]
struct Interner<T> {
    ids: HashMap<T, u32>,
    values: Vec<T>,
}

impl<T: Clone + Eq + std::hash::Hash> Interner<T> {
    fn intern(&mut self, value: &T) -> u32 {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.values.push(value.clone());
        self.ids.insert(value.clone(), id);
        id
    }
}

/// The in-memory index. Not synchronised: its owner puts it behind a lock.
///
/// A replaced or removed document's slot is marked dead and skipped; its postings
/// are swept out of the lists once the dead are an eighth of the living (a sweep
/// reads every list once), and the slots renumbered by [`compact`](Self::compact)
/// when they run out.
#[derive(Debug, Default)]
pub struct SearchIndex {
    terms: HashMap<Box<str>, u32>,
    /// Per term, per kind (articles, services): the documents holding it.
    postings: Vec<[Vec<Posting>; 2]>,
    meta: Vec<Meta>,
    shown: Vec<Option<Box<Shown>>>,
    by_key: HashMap<(DocKind, uuid::Uuid), u32>,
    categories: Interner<String>,
    account_lists: Interner<Vec<String>>,
    live: usize,
    dead: usize,
}

fn kind_index(kind: DocKind) -> usize {
    match kind {
        DocKind::Article => 0,
        DocKind::Service => 1,
    }
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether it holds no document.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds `doc`, replacing the document of the same kind and id if there is one.
    pub fn upsert(&mut self, doc: IndexedDoc) {
        self.remove(doc.kind, doc.ref_id);
        if self.meta.len() >= SLOT_MAX as usize {
            self.compact();
        }
        let slot = u32::try_from(self.meta.len()).unwrap_or(SLOT_MAX);
        let mut levels: HashMap<&str, u8> = HashMap::new();
        let weighted = [
            (1, &doc.words),
            (2, &doc.keyword_words),
            (3, &doc.title_words),
        ];
        for (level, words) in weighted {
            for word in words {
                let best = levels.entry(word.as_str()).or_insert(level);
                *best = (*best).max(level);
            }
        }
        let kind = kind_index(doc.kind);
        for (word, level) in levels {
            let term = self.term(word);
            self.postings[term as usize][kind].push(posting(slot, level));
        }
        self.meta.push(Meta {
            ref_id: doc.ref_id,
            category: self.categories.intern(&doc.category),
            accounts: self.account_lists.intern(&doc.accounts),
            kind: doc.kind,
            enabled: doc.enabled,
            live: true,
        });
        self.shown.push(Some(Box::new(Shown {
            title: doc.title,
            summary: doc.summary,
            url: doc.url,
        })));
        self.by_key.insert((doc.kind, doc.ref_id), slot);
        self.live += 1;
    }

    /// Takes out the document of that kind and id, if it is here.
    pub fn remove(&mut self, kind: DocKind, ref_id: uuid::Uuid) {
        let Some(slot) = self.by_key.remove(&(kind, ref_id)) else {
            return;
        };
        self.meta[slot as usize].live = false;
        self.shown[slot as usize] = None;
        self.live -= 1;
        self.dead += 1;
        if self.dead * 8 > self.live.max(64) {
            self.sweep();
        }
    }

    /// Frees what loading left spare (each list's room to grow).
    pub fn shrink_to_fit(&mut self) {
        for lists in &mut self.postings {
            for list in lists {
                list.shrink_to_fit();
            }
        }
        self.meta.shrink_to_fit();
        self.shown.shrink_to_fit();
    }

    /// The documents matching `query` that `filter` lets through, best first: by
    /// level, then services before articles, then the newest (ids are UUIDv7); at
    /// most `filter.limit`.
    pub fn search(&self, query: &Match, filter: &SearchFilter<'_>) -> Vec<IndexHit> {
        let limit = usize::try_from(filter.limit).unwrap_or(0);
        if limit == 0 {
            return Vec::new();
        }
        let shown_on: Vec<bool> = self
            .account_lists
            .values
            .iter()
            .map(|list| list.iter().any(|a| a == filter.account))
            .collect();
        let category = match filter.category {
            Some(name) => match self.categories.ids.get(name) {
                Some(id) => Some(*id),
                None => return Vec::new(),
            },
            None => None,
        };
        // The `limit` best, worst on top so it is the one a better hit replaces.
        let mut best: BinaryHeap<Reverse<(u8, DocKind, uuid::Uuid, u32)>> =
            BinaryHeap::with_capacity(limit + 1);
        for kind in filter.kinds() {
            for p in self.evaluate(query, kind_index(*kind)) {
                let slot = slot_of(p);
                let meta = &self.meta[slot as usize];
                if !meta.live
                    || !meta.enabled
                    || !shown_on[meta.accounts as usize]
                    || category.is_some_and(|c| c != meta.category)
                {
                    continue;
                }
                let key = (level_of(p), meta.kind, meta.ref_id, slot);
                if best.len() < limit {
                    best.push(Reverse(key));
                } else if best.peek().is_some_and(|Reverse(worst)| key > *worst) {
                    best.pop();
                    best.push(Reverse(key));
                }
            }
        }
        let mut keys: Vec<_> = best.into_iter().map(|Reverse(key)| key).collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.into_iter()
            .filter_map(|(level, kind, ref_id, slot)| {
                let shown = self.shown[slot as usize].as_ref()?;
                let category = self.meta[slot as usize].category;
                Some(IndexHit {
                    kind,
                    ref_id,
                    category: self.categories.values[category as usize].clone(),
                    title: shown.title.clone(),
                    summary: shown.summary.clone(),
                    url: shown.url.clone(),
                    level,
                })
            })
            .collect()
    }

    /// Renumbers the documents from 0, dropping the slots of removed ones.
    pub fn compact(&mut self) {
        let mut old = std::mem::take(self);
        let mut words: Vec<&str> = vec![""; old.postings.len()];
        for (word, term) in &old.terms {
            words[*term as usize] = word;
        }
        // A document's words at their levels, read back from the posting lists.
        let mut levels: HashMap<u32, Vec<(u32, u8)>> = HashMap::new();
        for (term, lists) in old.postings.iter().enumerate() {
            let term = u32::try_from(term).unwrap_or(u32::MAX);
            for p in lists.iter().flatten() {
                levels
                    .entry(slot_of(*p))
                    .or_default()
                    .push((term, level_of(*p)));
            }
        }
        for (slot, meta) in old.meta.iter().enumerate() {
            let Some(shown) = old.shown[slot].take() else {
                continue;
            };
            let slot = u32::try_from(slot).unwrap_or(SLOT_MAX);
            let mut doc = IndexedDoc {
                kind: meta.kind,
                ref_id: meta.ref_id,
                accounts: old.account_lists.values[meta.accounts as usize].clone(),
                category: old.categories.values[meta.category as usize].clone(),
                title: shown.title,
                summary: shown.summary,
                url: shown.url,
                enabled: meta.enabled,
                title_words: Vec::new(),
                keyword_words: Vec::new(),
                words: Vec::new(),
            };
            for (term, level) in levels.remove(&slot).unwrap_or_default() {
                let word = words[term as usize].to_owned();
                match level {
                    3 => doc.title_words.push(word),
                    2 => doc.keyword_words.push(word),
                    _ => doc.words.push(word),
                }
            }
            self.upsert(doc);
        }
    }

    /// Takes the postings of dead slots out of every list.
    fn sweep(&mut self) {
        let meta = &self.meta;
        for lists in &mut self.postings {
            for list in lists {
                list.retain(|p| meta[slot_of(*p) as usize].live);
            }
        }
        self.dead = 0;
    }

    fn term(&mut self, word: &str) -> u32 {
        if let Some(term) = self.terms.get(word) {
            return *term;
        }
        let term = u32::try_from(self.postings.len()).unwrap_or(u32::MAX);
        self.postings.push([Vec::new(), Vec::new()]);
        self.terms.insert(word.into(), term);
        term
    }

    /// The documents of one kind matching `query`, by slot, each at its level.
    fn evaluate(&self, query: &Match, kind: usize) -> Vec<Posting> {
        match query {
            Match::Word(word) => self
                .terms
                .get(word.as_str())
                .map(|term| self.postings[*term as usize][kind].clone())
                .unwrap_or_default(),
            Match::All(parts) => {
                let mut lists: Vec<Vec<Posting>> =
                    parts.iter().map(|part| self.evaluate(part, kind)).collect();
                // The shortest first: each step can only shrink the result.
                lists.sort_by_key(Vec::len);
                let mut lists = lists.into_iter();
                let first = lists.next().unwrap_or_default();
                lists.fold(first, |acc, next| intersect(&acc, &next))
            }
            Match::Any(parts) => parts
                .iter()
                .map(|part| self.evaluate(part, kind))
                .reduce(|acc, next| union(&acc, &next))
                .unwrap_or_default(),
        }
    }
}

/// The documents in both lists, at the lower of their two levels.
fn intersect(a: &[Posting], b: &[Posting]) -> Vec<Posting> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        match slot_of(x).cmp(&slot_of(y)) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x.min(y));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The documents in either list, at the higher level where both hold one.
fn union(a: &[Posting], b: &[Posting]) -> Vec<Posting> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        match slot_of(x).cmp(&slot_of(y)) {
            std::cmp::Ordering::Less => {
                out.push(x);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(y);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(x.max(y));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    fn doc(kind: DocKind, n: u128, title: &str, keywords: &str, body: &str) -> IndexedDoc {
        let mut all = words(title);
        all.extend(words(keywords));
        all.extend(words(body));
        IndexedDoc {
            kind,
            ref_id: uuid::Uuid::from_u128(n),
            accounts: vec!["city".to_owned()],
            category: if kind == DocKind::Service {
                "shebao".to_owned()
            } else {
                String::new()
            },
            title: title.to_owned(),
            summary: body.to_owned(),
            url: format!("https://example.gov.cn/{n}"),
            enabled: true,
            title_words: words(title),
            keyword_words: words(keywords),
            words: all,
        }
    }

    fn filter(limit: i64) -> SearchFilter<'static> {
        SearchFilter {
            account: "city",
            kind: None,
            category: None,
            limit,
        }
    }

    fn word(w: &str) -> Match {
        Match::Word(w.to_owned())
    }

    fn found(index: &SearchIndex, query: &Match, filter: &SearchFilter<'_>) -> Vec<(u128, u8)> {
        index
            .search(query, filter)
            .into_iter()
            .map(|hit| (hit.ref_id.as_u128(), hit.level))
            .collect()
    }

    #[test]
    fn title_hits_rank_above_keyword_hits_above_body_hits_then_services_then_newest() {
        let mut index = SearchIndex::new();
        index.upsert(doc(DocKind::Article, 1, "社保卡 补办", "", ""));
        // Both words, one only in the body: a body hit, like the service's.
        index.upsert(doc(DocKind::Article, 2, "通知", "社保卡", "补办"));
        index.upsert(doc(DocKind::Service, 3, "通知", "", "社保卡 补办"));
        index.upsert(doc(DocKind::Article, 4, "社保卡 补办", "", ""));
        index.upsert(doc(DocKind::Service, 5, "社保卡 补办", "", ""));
        let query = Match::All(vec![word("社保卡"), word("补办")]);
        assert_eq!(
            found(&index, &query, &filter(10)),
            vec![(5, 3), (4, 3), (1, 3), (3, 1), (2, 1)]
        );
        assert_eq!(found(&index, &query, &filter(2)), vec![(5, 3), (4, 3)]);
    }

    #[test]
    fn an_and_takes_the_weaker_level_and_an_or_the_stronger() {
        let mut index = SearchIndex::new();
        index.upsert(doc(DocKind::Article, 1, "公积金", "提取", ""));
        index.upsert(doc(DocKind::Article, 2, "住房公积金 提取", "", ""));
        let all = Match::All(vec![
            Match::Any(vec![word("公积金"), word("住房公积金")]),
            word("提取"),
        ]);
        assert_eq!(found(&index, &all, &filter(10)), vec![(2, 3), (1, 2)]);
        let any = Match::Any(vec![word("公积金"), word("提取")]);
        assert_eq!(found(&index, &any, &filter(10)), vec![(2, 3), (1, 3)]);
        assert!(found(&index, &word("医保"), &filter(10)).is_empty());
    }

    #[test]
    fn filters_keep_out_other_accounts_kinds_categories_and_disabled_services() {
        let mut index = SearchIndex::new();
        index.upsert(doc(DocKind::Service, 1, "社保卡", "", ""));
        index.upsert(doc(DocKind::Article, 2, "社保卡", "", ""));
        let mut other = doc(DocKind::Service, 3, "社保卡", "", "");
        other.accounts = vec!["county".to_owned()];
        index.upsert(other);
        let mut disabled = doc(DocKind::Service, 4, "社保卡", "", "");
        disabled.enabled = false;
        index.upsert(disabled);
        let q = word("社保卡");
        assert_eq!(found(&index, &q, &filter(10)), vec![(1, 3), (2, 3)]);
        let services = SearchFilter {
            kind: Some("service"),
            ..filter(10)
        };
        assert_eq!(found(&index, &q, &services), vec![(1, 3)]);
        let articles = SearchFilter {
            kind: Some("article"),
            ..filter(10)
        };
        assert_eq!(found(&index, &q, &articles), vec![(2, 3)]);
        let category = SearchFilter {
            category: Some("shebao"),
            ..filter(10)
        };
        assert_eq!(found(&index, &q, &category), vec![(1, 3)]);
        let unknown = SearchFilter {
            category: Some("jiaotong"),
            ..filter(10)
        };
        assert!(found(&index, &q, &unknown).is_empty());
        let county = SearchFilter {
            account: "county",
            ..filter(10)
        };
        assert_eq!(found(&index, &q, &county), vec![(3, 3)]);
    }

    #[test]
    fn a_replaced_or_removed_document_is_found_by_its_new_words_only() {
        let mut index = SearchIndex::new();
        index.upsert(doc(DocKind::Service, 1, "社保卡", "", ""));
        index.upsert(doc(DocKind::Service, 1, "医保", "", ""));
        assert!(found(&index, &word("社保卡"), &filter(10)).is_empty());
        assert_eq!(found(&index, &word("医保"), &filter(10)), vec![(1, 3)]);
        assert_eq!(index.len(), 1);
        index.remove(DocKind::Service, uuid::Uuid::from_u128(1));
        assert!(found(&index, &word("医保"), &filter(10)).is_empty());
        assert!(index.is_empty());
    }

    #[test]
    fn compacting_keeps_every_document_at_its_levels() {
        let mut index = SearchIndex::new();
        for n in 0..20 {
            index.upsert(doc(DocKind::Article, n, "通知", "停水", "社保卡"));
        }
        for n in 0..10 {
            index.remove(DocKind::Article, uuid::Uuid::from_u128(n));
        }
        let query = Match::Any(vec![word("停水"), word("社保卡")]);
        let before = found(&index, &query, &filter(50));
        index.compact();
        assert_eq!(index.meta.len(), 10);
        assert_eq!(found(&index, &query, &filter(50)), before);
        assert_eq!(before.len(), 10);
        assert!(before.iter().all(|(_, level)| *level == 2));
        let title = found(&index, &word("通知"), &filter(50));
        assert!(title.iter().all(|(_, level)| *level == 3), "{title:?}");
    }
}
