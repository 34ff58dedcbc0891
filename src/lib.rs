//! pg_background: run SQL commands in PostgreSQL background workers.
//!
//! See docs/reference.md for the SQL reference and docs/architecture.md for how it works.

// pgrx's ErrorReport (what `#[pg_extern]` functions return to raise an ERROR with a chosen
// SQLSTATE) is 200+ bytes; errors are the cold path, and boxing it would only be undone for pgrx.
#![allow(clippy::result_large_err)]

#[cfg(not(panic = "unwind"))]
compile_error!(
    "pg_background must be built with panic = \"unwind\" (pgrx turns panics into ERRORs)"
);

mod api;
mod c_symbols;
mod catalog;
mod error;
mod ffi;
mod guc;
mod launcher;
mod params;
mod protocol;
mod registry;
#[cfg(test)]
mod rng;
mod server;
mod shm;
mod spill;
mod text;
mod worker;

#[cfg(test)]
mod layers;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pgrx::pg_module_magic!();

/// Library load, in launchers and in workers: define the settings; in the postmaster
/// (`shared_preload_libraries`, before PostgreSQL 17), also request the job registry's memory.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::init();
    registry::preload();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["max_worker_processes = 32"]
    }
}
