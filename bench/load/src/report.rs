//! Turns the viewers' counts and the server's /proc readings into one JSON
//! object (stdout) and a one-line summary (stderr).

use crate::{Args, Viewer};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i]
}

type CpuReading = Result<Option<f64>, String>;

fn server_cpu_of(before: &CpuReading, after: &CpuReading) -> f64 {
    match (before, after) {
        (Ok(Some(a)), Ok(Some(b))) => b - a,
        _ => f64::NAN,
    }
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "null".into()
    }
}

/// CPU readings over the window.
pub struct Cpu {
    /// Server utime+stime (/proc/PID/stat) at the start and end.
    pub before: CpuReading,
    pub after: CpuReading,
    /// Server CPU seconds from per-thread schedstat (ns resolution).
    pub threads: f64,
    /// This client's own CPU seconds.
    pub client: f64,
    /// The whole machine's busy and steal CPU seconds (/proc/stat).
    pub machine: (f64, f64),
}

pub fn report(
    args: &Args,
    viewers: &[Viewer],
    secs: f64,
    cpu: Cpu,
    mem: Result<Option<(u64, u64)>, String>,
    server_threads: Option<u64>,
) {
    let Cpu {
        before: cpu0,
        after: cpu1,
        threads: sched_cpu,
        client: client_cpu,
        machine: (machine_busy, steal),
    } = cpu;
    // What the rest of the machine used meanwhile: the noise.
    let others_cpu = machine_busy - client_cpu - server_cpu_of(&cpu0, &cpu1);
    let dur = args.duration.as_secs_f64();
    let served: Vec<&Viewer> = viewers.iter().filter(|v| v.status == 200).collect();
    let mut fps: Vec<f64> = served.iter().map(|v| v.frames as f64 / dur).collect();
    fps.sort_by(f64::total_cmp);
    let mut lat: Vec<f64> = served
        .iter()
        .flat_map(|v| v.latencies_ms.iter().map(|&l| f64::from(l)))
        .collect();
    lat.sort_by(f64::total_cmp);
    let mut stamp_lat: Vec<f64> = served
        .iter()
        .flat_map(|v| v.stamp_latencies_ms.iter().map(|&l| f64::from(l)))
        .collect();
    stamp_lat.sort_by(f64::total_cmp);
    let grab_timed: u64 = served.iter().map(|v| v.grab_timed).sum();
    // What `latency_ms_*` was measured from.
    let latency_from = if grab_timed == 0 {
        "X-Timestamp"
    } else if grab_timed as usize == lat.len() {
        "X-UStreamer-Grab-Time"
    } else {
        "mixed"
    };
    let frames: u64 = served.iter().map(|v| v.frames).sum();
    let bytes: u64 = served.iter().map(|v| v.bytes).sum();
    let mut connect: Vec<f64> = served.iter().map(|v| v.connect_ms).collect();
    connect.sort_by(f64::total_cmp);
    let head_max = served.iter().map(|v| v.head_ms).fold(f64::NAN, f64::max);
    let slow_heads = served.iter().filter(|v| v.head_ms > 1000.0).count();
    let mut first: Vec<f64> = served.iter().filter_map(|v| v.first_part_ms).collect();
    first.sort_by(f64::total_cmp);
    let mut statuses: Vec<(u16, usize)> = Vec::new();
    for v in viewers {
        match statuses.iter_mut().find(|(s, _)| *s == v.status) {
            Some((_, n)) => *n += 1,
            None => statuses.push((v.status, 1)),
        }
    }
    let errors: Vec<&str> = viewers.iter().filter_map(|v| v.error.as_deref()).collect();
    let server_cpu = server_cpu_of(&cpu0, &cpu1);
    for e in [
        &cpu0.as_ref().err(),
        &cpu1.as_ref().err(),
        &mem.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        eprintln!("vr-load: server accounting: {e}");
    }
    let (rss, hwm) = mem.ok().flatten().unwrap_or((0, 0));
    let at_full = fps.iter().filter(|&&f| f >= 28.0).count();
    let median = percentile(&fps, 50.0);
    let min = fps.first().copied().unwrap_or(f64::NAN);

    let status_json: Vec<String> = statuses
        .iter()
        .map(|(s, n)| format!("\"{s}\":{n}"))
        .collect();
    let first_error = errors
        .first()
        .map(|e| format!("\"{}\"", e.replace('\\', "\\\\").replace('"', "'")))
        .unwrap_or_else(|| "null".into());
    println!(
        "{{\"viewers\":{},\"ramp_s\":{},\"served\":{},\"statuses\":{{{}}},\"errors\":{},\"first_error\":{},\
         \"fps_median\":{},\"fps_min\":{},\"fps_max\":{},\"viewers_at_28fps\":{},\
         \"latency_ms_p50\":{},\"latency_ms_p99\":{},\"latency_ms_max\":{},\"latency_from\":\"{}\",\
         \"x_timestamp_latency_ms_p50\":{},\"x_timestamp_latency_ms_p99\":{},\
         \"frames\":{},\"mbit_per_s\":{},\"window_s\":{},\
         \"server_cpu_s\":{},\"server_cpu_pct\":{},\"server_cpu_ms_per_frame\":{},\
         \"server_sched_cpu_s\":{},\"server_sched_ms_per_frame\":{},\
         \"server_rss_kib\":{},\"server_hwm_kib\":{},\"server_threads\":{},\
         \"client_cpu_pct\":{},\"others_cpu_pct\":{},\"steal_pct\":{},\"connect_ms_max\":{},\"head_ms_max\":{},\"heads_over_1s\":{},\"first_part_ms_max\":{}}}",
        viewers.len(),
        json_num(args.ramp.as_secs_f64()),
        served.len(),
        status_json.join(","),
        errors.len(),
        first_error,
        json_num(median),
        json_num(min),
        json_num(fps.last().copied().unwrap_or(f64::NAN)),
        at_full,
        json_num(percentile(&lat, 50.0)),
        json_num(percentile(&lat, 99.0)),
        json_num(lat.last().copied().unwrap_or(f64::NAN)),
        latency_from,
        json_num(percentile(&stamp_lat, 50.0)),
        json_num(percentile(&stamp_lat, 99.0)),
        frames,
        json_num(bytes as f64 * 8.0 / dur / 1e6),
        json_num(secs),
        json_num(server_cpu),
        json_num(server_cpu / secs * 100.0),
        json_num(server_cpu * 1e3 / frames as f64),
        json_num(sched_cpu),
        json_num(sched_cpu * 1e3 / frames as f64),
        rss,
        hwm,
        server_threads.unwrap_or(0),
        json_num(client_cpu / secs * 100.0),
        json_num(others_cpu / secs * 100.0),
        json_num(steal / secs * 100.0),
        json_num(connect.last().copied().unwrap_or(f64::NAN)),
        json_num(head_max),
        slow_heads,
        json_num(first.last().copied().unwrap_or(f64::NAN)),
    );
    eprintln!(
        "{} viewers ({} served, {} errors): fps median {:.1} min {:.1}, {} at >= 28 fps; \
         latency p50 {:.2} ms p99 {:.2} ms (from {}); server CPU {:.1}% = {:.4} ms/frame, RSS {} KiB; client CPU {:.0}%; \
         others {:.0}%, steal {:.0}%; slowest connect {:.0} ms, head {:.0} ms ({} over 1 s)",
        viewers.len(),
        served.len(),
        errors.len(),
        median,
        min,
        at_full,
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        latency_from,
        server_cpu / secs * 100.0,
        server_cpu * 1e3 / frames as f64,
        rss,
        client_cpu / secs * 100.0,
        others_cpu / secs * 100.0,
        steal / secs * 100.0,
        connect.last().copied().unwrap_or(f64::NAN),
        head_max,
        slow_heads,
    );
    if let Some(e) = errors.first() {
        eprintln!("first error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_sorted_list() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), 51.0);
        assert_eq!(percentile(&xs, 99.0), 99.0);
        assert_eq!(percentile(&xs, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(json_num(f64::NAN), "null");
    }
}
