//! Qingbo's WeChat Communication Index (WCI), as data: a version is a set of weights,
//! never a code branch (domain.md §1.2). Every version in use has the same shape:
//!
//! - four dimensions over one period of `d` days and `n` articles: O (overall, per
//!   day), A (per article), H (headline, per day) and P (peak, the best article);
//! - each dimension is `Σ wᵢ·ln(mᵢ·xᵢ + 1)` over reads, 在看 (Z), likes (L) and shares
//!   (RE), where the multiplier `mᵢ` is 1 for reads and 10 for the others;
//! - `WCI = (wO·O + wA·A + wH·H + wP·P)² × scale`.
//!
//! Computed in f64 throughout (sunl888's Go port divides integers before `ln`, and
//! truncates).

/// The weights of one WCI version.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WciVersion {
    /// The name used on the wire and in the ranking (`v13`, `v14.2`, `provincial`).
    pub name: &'static str,
    /// Weights of reads, 在看, likes and shares inside every dimension.
    pub terms: [f64; 4],
    /// Weights of O, A, H and P.
    pub dimensions: [f64; 4],
    /// What the squared sum is multiplied by.
    pub scale: f64,
}

/// V13.0, used for lists from 2017-07-01: 85/15 reads/在看, 0.3/0.3/0.3/0.1, ×10.
pub const V13: WciVersion = WciVersion {
    name: "v13",
    terms: [0.85, 0.15, 0.0, 0.0],
    dimensions: [0.3, 0.3, 0.3, 0.1],
    scale: 10.0,
};

/// V14.2, gsdata's current page: 70/9/6/15 reads/在看/likes/shares,
/// 0.6/0.2/0.1/0.1, ×1.2×10.
pub const V14_2: WciVersion = WciVersion {
    name: "v14.2",
    terms: [0.70, 0.09, 0.06, 0.15],
    dimensions: [0.6, 0.2, 0.1, 0.1],
    scale: 12.0,
};

/// The provincial variant: V13's terms without the headline dimension,
/// 0.42/0.42/0.16.
pub const PROVINCIAL: WciVersion = WciVersion {
    name: "provincial",
    terms: [0.85, 0.15, 0.0, 0.0],
    dimensions: [0.42, 0.42, 0.0, 0.16],
    scale: 10.0,
};

/// Every version, the default (the current page) first.
pub const VERSIONS: [WciVersion; 3] = [V14_2, V13, PROVINCIAL];

impl WciVersion {
    /// The version called `name`, if there is one.
    pub fn by_name(name: &str) -> Option<Self> {
        VERSIONS.iter().copied().find(|v| v.name == name)
    }

    /// The index for one period; 0 for a period without articles (n = 0 or d = 0).
    pub fn score(&self, period: &WciPeriod) -> f64 {
        if period.articles == 0 || period.days == 0 {
            return 0.0;
        }
        let d = f64::from(period.days);
        let n = period.articles as f64;
        let overall = self.dimension(period.total.per(d));
        let average = self.dimension(period.total.per(n));
        let headline = self.dimension(period.headline.per(d));
        let peak = self.dimension(period.best);
        let [wo, wa, wh, wp] = self.dimensions;
        let sum = wo * overall + wa * average + wh * headline + wp * peak;
        sum * sum * self.scale
    }

    fn dimension(&self, figures: Figures) -> f64 {
        let [reads, zaikan, likes, shares] = self.terms;
        reads * (figures.reads + 1.0).ln()
            + zaikan * (10.0 * figures.zaikan + 1.0).ln()
            + likes * (10.0 * figures.likes + 1.0).ln()
            + shares * (10.0 * figures.shares + 1.0).ln()
    }
}

/// Reads, 在看, likes and shares: of one article, a total, or a rate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub reads: f64,
    /// 在看 (Z; likes before WeChat split them).
    pub zaikan: f64,
    /// 点赞 (L).
    pub likes: f64,
    /// 转发 (RE).
    pub shares: f64,
}

impl Figures {
    fn per(self, divisor: f64) -> Self {
        Self {
            reads: self.reads / divisor,
            zaikan: self.zaikan / divisor,
            likes: self.likes / divisor,
            shares: self.shares / divisor,
        }
    }

    /// Adds another article's figures to a total.
    pub fn add(&mut self, other: Figures) {
        self.reads += other.reads;
        self.zaikan += other.zaikan;
        self.likes += other.likes;
        self.shares += other.shares;
    }

    /// The larger of each figure (the "best article" of P takes each maximum on its own).
    pub fn max(&mut self, other: Figures) {
        self.reads = self.reads.max(other.reads);
        self.zaikan = self.zaikan.max(other.zaikan);
        self.likes = self.likes.max(other.likes);
        self.shares = self.shares.max(other.shares);
    }
}

/// What one account published in one period, as the index reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WciPeriod {
    /// The time base d: 7 for a week, 30 for a month, 365 for a year (domain.md §1.1).
    pub days: u32,
    /// n: articles published in the period.
    pub articles: u64,
    /// Totals over every article.
    pub total: Figures,
    /// Totals over headline (position 1) articles.
    pub headline: Figures,
    /// Each figure's maximum over single articles.
    pub best: Figures,
}

/// Qingbo stores a "10万+" read count as 100001.
pub const READS_CAP: f64 = 100_001.0;

/// One article's figures as the monthly list counts them (its day-7 snapshot).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArticleFigures {
    pub headline: bool,
    pub figures: Figures,
}

impl WciPeriod {
    /// The period of `days` made of these articles; reads above 100,000 count as 100,001.
    pub fn from_articles(days: u32, articles: impl IntoIterator<Item = ArticleFigures>) -> Self {
        let mut period = Self {
            days,
            ..Self::default()
        };
        for article in articles {
            let mut figures = article.figures;
            figures.reads = figures.reads.min(READS_CAP);
            period.articles += 1;
            period.total.add(figures);
            if article.headline {
                period.headline.add(figures);
            }
            period.best.max(figures);
        }
        period
    }
}

/// The time base d of a period of `days` calendar days: a whole month counts 30 and a
/// year 365 whatever its length (domain.md §1.1); other spans their real length.
pub fn time_base(days: u32, whole_month: bool) -> u32 {
    if whole_month { 30 } else { days }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// domain.md §1.2's sample month (d=30, n=90, R=270k, …), recomputed there in Python.
    fn sample_month() -> WciPeriod {
        WciPeriod {
            days: 30,
            articles: 90,
            total: Figures {
                reads: 270_000.0,
                zaikan: 2_700.0,
                likes: 4_500.0,
                shares: 9_000.0,
            },
            headline: Figures {
                reads: 150_000.0,
                zaikan: 1_800.0,
                likes: 2_700.0,
                shares: 5_000.0,
            },
            best: Figures {
                reads: 40_000.0,
                zaikan: 400.0,
                likes: 600.0,
                shares: 1_500.0,
            },
        }
    }

    #[test]
    fn v14_2_reproduces_the_worked_example() {
        let score = V14_2.score(&sample_month());
        assert_eq!(format!("{score:.0}"), "867");
        assert!((score - 866.943_528_9).abs() < 1e-6, "{score}");
    }

    #[test]
    fn v13_reproduces_the_worked_example() {
        let score = V13.score(&sample_month());
        assert_eq!(format!("{score:.0}"), "708");
        assert!((score - 707.531_171_1).abs() < 1e-6, "{score}");
    }

    #[test]
    fn the_provincial_variant_drops_the_headline_term() {
        let month = sample_month();
        let score = PROVINCIAL.score(&month);
        assert!((score - 728.852_755_9).abs() < 1e-6, "{score}");
        let without_headlines = WciPeriod {
            headline: Figures::default(),
            ..month
        };
        assert_eq!(PROVINCIAL.score(&without_headlines), score);
        assert!(V13.score(&without_headlines) < V13.score(&month));
    }

    #[test]
    fn a_period_without_articles_scores_zero() {
        let empty = WciPeriod {
            days: 30,
            ..WciPeriod::default()
        };
        for version in VERSIONS {
            assert_eq!(version.score(&empty), 0.0);
        }
    }

    #[test]
    fn articles_add_up_to_totals_headlines_and_maxima_with_reads_capped() {
        let article = |headline, reads, zaikan| ArticleFigures {
            headline,
            figures: Figures {
                reads,
                zaikan,
                likes: 1.0,
                shares: 2.0,
            },
        };
        let period = WciPeriod::from_articles(
            7,
            [article(true, 250_000.0, 10.0), article(false, 500.0, 30.0)],
        );
        assert_eq!(period.articles, 2);
        assert_eq!(period.total.reads, 100_501.0);
        assert_eq!(period.headline.reads, 100_001.0);
        assert_eq!(period.best.reads, 100_001.0);
        assert_eq!(period.best.zaikan, 30.0);
        assert_eq!(period.total.shares, 4.0);
    }

    #[test]
    fn versions_are_found_by_name() {
        assert_eq!(WciVersion::by_name("v13"), Some(V13));
        assert_eq!(WciVersion::by_name("v14.2"), Some(V14_2));
        assert_eq!(WciVersion::by_name("provincial"), Some(PROVINCIAL));
        assert_eq!(WciVersion::by_name("v99"), None);
    }

    #[test]
    fn a_whole_month_counts_thirty_days() {
        assert_eq!(time_base(31, true), 30);
        assert_eq!(time_base(28, true), 30);
        assert_eq!(time_base(7, false), 7);
    }
}
