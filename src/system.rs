//! The host's health as a Raspberry Pi reports it: clock synchronisation,
//! under-voltage and throttling, temperature. Read from files, so it works
//! under the service's hardening (no /dev/vchiq, no vcgencmd).

use serde_json::{Value, json};

/// The firmware's throttling flags (what `vcgencmd get_throttled` prints).
const THROTTLED: &str = "/sys/devices/platform/soc/soc:firmware/get_throttled";
const THERMAL: &str = "/sys/class/thermal/thermal_zone0/temp";

/// Decodes the firmware's bits: 0-3 are happening now, 16-19 happened since boot.
pub fn decode_throttled(raw: u32) -> Value {
    let bit = |n: u32| raw & (1 << n) != 0;
    let mut problems = Vec::new();
    if bit(0) {
        problems.push("under-voltage now: use a better power supply (5.1 V, 3 A or more)");
    } else if bit(16) {
        problems.push("under-voltage happened since boot: check the power supply");
    }
    if bit(2) || bit(3) {
        problems.push("CPU throttled now (heat or power)");
    }
    json!({
        "raw": format!("0x{raw:x}"),
        "undervoltage": bit(0),
        "undervoltage_since_boot": bit(16),
        "frequency_capped": bit(1),
        "throttled": bit(2),
        "soft_temp_limit": bit(3),
        "throttled_since_boot": bit(18),
        "problems": problems,
    })
}

fn read_throttled() -> Option<Value> {
    let text = std::fs::read_to_string(THROTTLED).ok()?;
    let t = text.trim().trim_start_matches("0x");
    u32::from_str_radix(t, 16).ok().map(decode_throttled)
}

fn read_temperature() -> Option<f64> {
    let text = std::fs::read_to_string(THERMAL).ok()?;
    text.trim().parse::<f64>().ok().map(|m| m / 1000.0)
}

/// For `/status`: `power` is null where the firmware file is absent (not a Pi).
pub fn status() -> Value {
    let synced = crate::clock::synchronized();
    json!({
        "clock_synchronized": synced,
        "clock": crate::clock::rfc3339(std::time::SystemTime::now()),
        "power": read_throttled(),
        "temperature_c": read_temperature(),
    })
}

/// One line for the log at start, when something is wrong already.
pub fn warnings() -> Vec<String> {
    let mut out = Vec::new();
    if crate::clock::synchronized() == Some(false) {
        out.push(
            "the clock is not synchronised (no network time yet?): clip names may be behind"
                .to_string(),
        );
    }
    if let Some(p) = read_throttled()
        && let Some(list) = p["problems"].as_array()
    {
        out.extend(list.iter().filter_map(|v| v.as_str().map(String::from)));
    }
    out
}

/// Keeps glibc's allocator to two arenas. Its default (8 per core) reserves
/// 64 MiB of address space for each thread that allocates, up to 1 GiB here
/// with 15 threads and more on a 4-core Pi, and spreads freed memory over
/// them: a process whose address space is limited to a Pi's memory failed
/// a 16 MiB allocation with 70 MiB resident. Two arenas: 150 MiB of address
/// space for the same process. An environment's `MALLOC_ARENA_MAX` wins.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called first
        // thing in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_bits() {
        let ok = decode_throttled(0);
        assert_eq!(ok["undervoltage"], false);
        assert!(ok["problems"].as_array().unwrap().is_empty());
        // A Pi on a weak supply: under-voltage now and since boot, throttled.
        let weak = decode_throttled(0x50005);
        assert_eq!(weak["raw"], "0x50005");
        assert_eq!(weak["undervoltage"], true);
        assert_eq!(weak["undervoltage_since_boot"], true);
        assert_eq!(weak["throttled"], true);
        assert_eq!(weak["throttled_since_boot"], true);
        assert_eq!(weak["frequency_capped"], false);
        let problems = weak["problems"].as_array().unwrap();
        assert!(problems[0].as_str().unwrap().contains("power supply"));
        let past = decode_throttled(0x10000);
        assert!(past["problems"][0].as_str().unwrap().contains("since boot"));
    }

    #[test]
    fn status_has_the_clock() {
        let s = status();
        assert!(s["clock"].as_str().unwrap().ends_with('Z'));
        assert!(s.get("clock_synchronized").is_some());
    }
}
