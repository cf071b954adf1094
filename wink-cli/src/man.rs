//! Manual pages from the command-line definitions (clap_mangen): one for
//! the program and one per subcommand (`wink-start.1`, …), so they never
//! drift from `--help`. `cargo xtask man <dir>` writes them.

use std::path::Path;

/// Writes `<dir>/<name>.1` for `command` and `<dir>/<name>-<sub>.1` for
/// each of its subcommands; the files written.
pub fn write_pages(command: clap::Command, name: &str, dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let command = command.name(name.to_owned());
    for sub in command.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let page = format!("{name}-{}", sub.get_name());
        let sub = sub.clone().name(page.clone());
        write_page(sub, &page, dir)?;
        written.push(format!("{page}.1"));
    }
    write_page(command, name, dir)?;
    written.push(format!("{name}.1"));
    Ok(written)
}

fn write_page(command: clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command).render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.1")), out)
}
