//! kiln's fuzz targets; the functions are in `targets.rs`, which kiln's own tests also include
//! to replay every input kept in `fuzz/regressions/`.

pub mod targets;
