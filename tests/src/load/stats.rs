//! Percentiles and summaries of a run.

/// The `p`th percentile (0..=100) of `sorted` by nearest rank; `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Sorts `values` and returns (p50, p99, max), each `None` when empty.
pub fn summary(mut values: Vec<f64>) -> (Option<f64>, Option<f64>, Option<f64>) {
    values.sort_by(|a, b| a.total_cmp(b));
    (
        percentile(&values, 50.0),
        percentile(&values, 99.0),
        values.last().copied(),
    )
}

/// `Some(x)` as a JSON number, `None` as `null`.
pub fn json_num(v: Option<f64>) -> String {
    v.map_or_else(|| "null".into(), |x| format!("{x:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(
            summary(vec![3.0, 1.0, 2.0]),
            (Some(2.0), Some(3.0), Some(3.0))
        );
    }
}
