// `sqlx::migrate!` embeds the migrations at compile time; without this, a
// changed or added migration file would not rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=src/store/migrations");
}
