//! The names and fixed values a lab is made of: Chromium OS boards,
//! suites, tests, labels, attributes and keyvals, priorities, the build
//! version and the epoch of its creation times.

use chrono::{NaiveDate, NaiveDateTime};

/// Board names, as Chromium OS labs spelled them; more boards than names
/// repeat them with a number (`lumpy2`).
pub(super) const BOARDS: [&str; 20] = [
    "lumpy",
    "link",
    "peppy",
    "falco",
    "samus",
    "nyan_big",
    "veyron_jerry",
    "guado",
    "kevin",
    "eve",
    "nautilus",
    "octopus",
    "hatch",
    "coral",
    "grunt",
    "zork",
    "volteer",
    "dedede",
    "kukui",
    "trogdor",
];
/// Labels every host carries besides its board; the first is a dependency
/// of every child job.
pub(super) const EXTRA_LABELS: [&str; 8] = [
    "pool:suites",
    "sku:standard_4GB",
    "phase:PVT",
    "hw_video_acc_h264",
    "bluetooth",
    "webcam",
    "internal_display",
    "touchpad",
];
pub(super) const SUITES: [&str; 10] = [
    "bvt-inline",
    "bvt-cq",
    "bvt-perbuild",
    "au-perbuild",
    "sanity",
    "regression",
    "graphics_per-day",
    "hardware_storagequal",
    "power_daily",
    "kernel_daily_regression",
];
pub(super) const TESTS: [&str; 10] = [
    "login_LoginSuccess",
    "dummy_Pass",
    "platform_FilePerms",
    "security_ASLR",
    "network_WiFi_Perf",
    "graphics_GLBench",
    "power_Idle",
    "hardware_StorageFio",
    "video_PlaybackPerf",
    "audio_CrasSanity",
];
pub(super) const ATTRIBUTES: [&str; 6] = [
    "serial_number",
    "HWID",
    "powerunit_hostname",
    "powerunit_outlet",
    "servo_host",
    "servo_port",
];
pub(super) const KEYVALS: [&str; 6] = [
    "build",
    "suite",
    "experimental",
    "job_retries",
    "firmware_rw_build",
    "firmware_ro_build",
];
/// Chromium OS priorities: weekly, daily, post-build, default, build,
/// PFQ, CQ, super.
pub(super) const PRIORITIES: [i32; 8] = [10, 20, 30, 40, 50, 60, 70, 80];
/// The Chrome OS version every board's build carries.
pub(super) const VERSION: &str = "R90-13816.0.0";
/// When the first suite was created; later ones follow within the day.
pub(super) const EPOCH: NaiveDateTime = match NaiveDate::from_ymd_opt(2021, 3, 1) {
    Some(day) => match day.and_hms_opt(8, 0, 0) {
        Some(t) => t,
        None => panic!("8:00:00 is a time"),
    },
    None => panic!("2021-03-01 is a date"),
};
/// Every host starts `Ready` (§5 spelling; a test checks it against
/// [`shard_model::status`]).
pub(super) const HOST_READY: &str = "Ready";
/// Autotest's `ControlType`: server-side (suites) and client-side (tests).
pub(super) const CONTROL_SERVER: i32 = 1;
pub(super) const CONTROL_CLIENT: i32 = 2;
/// Hosts per rack in hostnames (`...-rack2-host3`).
pub(super) const HOSTS_PER_RACK: u32 = 10;

/// The `i`-th name of `names`, numbered from the second round on.
pub(super) fn nth(names: &[&str], i: usize) -> String {
    let base = names[i % names.len()];
    match i / names.len() {
        0 => base.to_owned(),
        round => format!("{base}{}", round + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_spelled_as_in_the_spec() {
        assert!(shard_model::status::HOST_STATUSES.contains(&HOST_READY));
    }

    #[test]
    fn names_repeat_with_a_number() {
        assert_eq!(nth(&BOARDS, 0), "lumpy");
        assert_eq!(nth(&BOARDS, 20), "lumpy2");
        assert_eq!(nth(&BOARDS, 41), "link3");
    }
}
