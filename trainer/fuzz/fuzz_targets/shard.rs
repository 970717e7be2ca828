//! Fuzz target `shard`: see `mtdiff::fuzzing::shard`.
#![no_main]

#[global_allocator]
static ALLOC: mtdiff::fuzzing::CappedAlloc = mtdiff::fuzzing::CappedAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtdiff::fuzzing::shard(data));
