fn main() {
    eprintln!("vtag-bench: not yet written");
    std::process::exit(1);
}
