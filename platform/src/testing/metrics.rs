//! Reading a Prometheus page in tests.

/// The value of the sample `name` whose labels include every `labels` pair, 0 if the
/// page has none (a counter not yet incremented is not rendered). The recorder is
/// process-global, so tests compare values before and after their own calls.
pub fn metric_value(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{value}\""))
        .collect();
    page.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .find(|line| wanted.iter().all(|label| line.contains(label.as_str())))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_a_subset_of_their_labels() {
        let page = "# TYPE calls_total counter\n\
                    calls_total{method=\"Check\",code=\"Ok\"} 3\n\
                    calls_total_other{method=\"Check\",code=\"Ok\"} 9\n";
        assert_eq!(metric_value(page, "calls_total", &[("code", "Ok")]), 3.0);
        assert_eq!(
            metric_value(page, "calls_total", &[("code", "Unknown")]),
            0.0
        );
    }
}
