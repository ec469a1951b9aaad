//! habackup: Home Assistant's backup platform in Rust.
//!
//! The pure-Rust engine (`archive`) knows nothing about Python; the `python` module, built only with
//! the `python` feature, is the thin pyo3 layer that maturin ships as `habackup._core`.

pub mod archive;
pub mod common;
pub mod prune;
pub mod securetar;
pub mod store;

#[cfg(feature = "python")]
mod python;
