//! Hand-rolled Prometheus metrics: request counter, latency histogram, process start time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds (seconds) of the latency histogram buckets, as in the Prometheus clients.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Route label of requests no route matched; keeps random paths out of the label set.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// What is known about one method and route: requests per status and their latencies.
#[derive(Debug, Default)]
struct RouteStats {
    /// Requests per status, sorted by status (few statuses per route).
    statuses: Vec<(u16, u64)>,
    durations: Histogram,
}

/// Method, then route pattern: the hot path finds a known series by `&str`, without
/// allocating, and rendering walks the series in label order.
#[derive(Debug, Default)]
struct State {
    series: BTreeMap<&'static str, BTreeMap<String, RouteStats>>,
}

/// Request metrics shared by all workers of one server.
#[derive(Debug)]
pub struct Metrics {
    start_time: f64,
    state: Mutex<State>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics; the process start time is taken now.
    pub fn new() -> Self {
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        Self {
            start_time,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters that are still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one finished request. `route` is the matched pattern, never the raw path.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = bounded_method(method);
        let seconds = elapsed.as_secs_f64();
        let mut state = self.lock();
        let routes = state.series.entry(method).or_default();
        let stats = match routes.get_mut(route) {
            Some(stats) => stats,
            None => routes.entry(route.to_owned()).or_default(),
        };
        match stats.statuses.binary_search_by_key(&status, |&(s, _)| s) {
            Ok(i) => stats.statuses[i].1 += 1,
            Err(i) => stats.statuses.insert(i, (status, 1)),
        }
        let histogram = &mut stats.durations;
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        histogram.counts[slot] += 1;
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// How many requests were recorded for this method, route and status.
    pub fn request_count(&self, method: &str, route: &str, status: u16) -> u64 {
        let state = self.lock();
        let Some(stats) = state
            .series
            .get(bounded_method(method))
            .and_then(|routes| routes.get(route))
        else {
            return 0;
        };
        stats
            .statuses
            .iter()
            .find(|&&(s, _)| s == status)
            .map_or(0, |&(_, n)| n)
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        out.push_str("# HELP http_requests_total Total number of HTTP requests.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for (method, route, stats) in state.iter() {
            for (status, count) in &stats.statuses {
                let _ = writeln!(
                    out,
                    "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(method),
                    escape(route)
                );
            }
        }
        out.push_str("# HELP http_request_duration_seconds HTTP request latency in seconds.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (method, route, stats) in state.iter() {
            let histogram = &stats.durations;
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        out.push_str("# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n");
        out.push_str("# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(out, "process_start_time_seconds {}", self.start_time);
        out
    }
}

impl State {
    /// Every series in label order (method, then route).
    fn iter(&self) -> impl Iterator<Item = (&str, &str, &RouteStats)> {
        self.series.iter().flat_map(|(method, routes)| {
            routes
                .iter()
                .map(move |(route, stats)| (*method, route.as_str(), stats))
        })
    }
}

/// Unknown methods share one label so a client cannot grow the label set.
fn bounded_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "OTHER",
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_cumulative_buckets() {
        let metrics = Metrics::new();
        metrics.observe("GET", "/items/{id}", 200, Duration::from_millis(3));
        metrics.observe("GET", "/items/{id}", 200, Duration::from_millis(300));
        metrics.observe("BREW", "/pot", 418, Duration::from_secs(60));
        assert_eq!(metrics.request_count("GET", "/items/{id}", 200), 2);
        assert_eq!(metrics.request_count("BREW", "/pot", 418), 1);
        let text = metrics.render();
        assert!(text.contains(
            "http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"200\"} 2"
        ));
        assert!(
            text.contains("http_requests_total{method=\"OTHER\",route=\"/pot\",status=\"418\"} 1")
        );
        assert!(text.contains(
            "http_request_duration_seconds_bucket{method=\"GET\",route=\"/items/{id}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "http_request_duration_seconds_bucket{method=\"GET\",route=\"/items/{id}\",le=\"0.5\"} 2"
        ));
        assert!(text.contains(
            "http_request_duration_seconds_bucket{method=\"OTHER\",route=\"/pot\",le=\"10\"} 0"
        ));
        assert!(text.contains(
            "http_request_duration_seconds_bucket{method=\"OTHER\",route=\"/pot\",le=\"+Inf\"} 1"
        ));
        assert!(text.contains("process_start_time_seconds "));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
