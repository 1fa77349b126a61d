// The checker allocates many small strings; mimalloc is markedly faster at
// that than glibc's allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    l3map::cli::run()
}
