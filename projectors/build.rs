// `sqlx::migrate!` embeds the migration files it saw when it was expanded; a new file in the
// directory must trigger a rebuild of the crate, or a binary ships without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
