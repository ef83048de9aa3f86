use std::process::ExitCode;

// Merges and dataset passes allocate many small JSON values; mimalloc serves them markedly
// faster than the system allocator. (Built without it, `system-allocator`, heap profilers see
// every allocation.)
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    annoform::cli::main()
}
