//! Argument parsing: what `wink` accepts, and how it refuses the rest.

use super::*;
use wink::control::Target;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("wink").chain(args.iter().copied()))
}

/// The one line `wink` prints for arguments clap refuses.
fn refusal(args: &[&str]) -> String {
    match parse(args) {
        Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
        Err(e) => one_line(&e.to_string()),
    }
}

fn address(text: &str) -> Address {
    text.parse().unwrap()
}

#[test]
fn global_options_have_defaults() {
    let cli = parse(&["list"]).unwrap();
    assert_eq!(cli.server, address("127.0.0.1:42000"));
    assert_eq!(cli.address, address("127.0.0.1:0"));
    assert_eq!(cli.timeout, Duration::from_secs(5));
    assert!(matches!(
        cli.command,
        Command::List(list::Args { host: None })
    ));
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    let cli = parse(&["-s", ":42100", "list", "-t", "0.5", "--address", ":7"]).unwrap();
    assert_eq!(cli.server, address("127.0.0.1:42100"));
    assert_eq!(cli.address, address("127.0.0.1:7"));
    assert_eq!(cli.timeout, Duration::from_millis(500));
}

#[test]
fn start_takes_a_name_a_target_and_words() {
    let cli = parse(&["start", "-f", "family/Parent", ":7003", "250", "-x"]).unwrap();
    let Command::Start(args) = cli.command else {
        panic!("{:?}", cli.command);
    };
    assert!(args.follow);
    assert_eq!(args.name.to_string(), "family/Parent");
    assert_eq!(args.target, Some(Target::Port(7003)));
    assert_eq!(args.args, ["250", "-x"]);

    let cli = parse(&["start", "greeter/Greeter#Bob", "10.0.0.2:7005"]).unwrap();
    let Command::Start(args) = cli.command else {
        panic!("{:?}", cli.command);
    };
    assert!(!args.follow);
    assert_eq!(args.target, Some(Target::Address(address("10.0.0.2:7005"))));
    assert!(args.args.is_empty());

    let cli = parse(&["start", "echo/Echo"]).unwrap();
    let Command::Start(args) = cli.command else {
        panic!("{:?}", cli.command);
    };
    assert_eq!(args.target, None, "the server is asked for :0");
}

#[test]
fn a_bad_name_is_refused_before_any_server_is_asked() {
    let line = refusal(&["start", "../../bin/sh"]);
    assert!(
        line.starts_with("invalid value '../../bin/sh' for '<NAME>': machine name `../../bin/sh`"),
        "{line}"
    );
    assert!(refusal(&["start", "/bin/sh"]).contains("machine name `/bin/sh`"));
}

#[test]
fn a_bad_target_is_refused() {
    let line = refusal(&["start", "echo/Echo", ":99999"]);
    assert!(
        line.starts_with("invalid value ':99999' for '[TARGET]': `:99999` is not a port"),
        "{line}"
    );
    let line = refusal(&["start", "echo/Echo", "somewhere"]);
    assert!(
        line.contains("invalid value 'somewhere' for '[TARGET]'"),
        "{line}"
    );
}

#[test]
fn a_bad_timeout_is_refused() {
    for bad in ["0", "-1", "86401", "soon", "NaN", "inf"] {
        let line = refusal(&["-t", bad, "list"]);
        assert!(
            line.starts_with(&format!("invalid value '{bad}' for '--timeout <TIMEOUT>'")),
            "{bad}: {line}"
        );
    }
    assert_eq!(
        refusal(&["-t", "0", "list"]),
        "invalid value '0' for '--timeout <TIMEOUT>': `0`: expected more than 0 and at most \
         86400 seconds"
    );
    assert!(parse(&["-t", "86400", "list"]).is_ok());
}

#[test]
fn send_needs_a_message() {
    let line = refusal(&["send", ":42101"]);
    assert_eq!(
        line,
        "the following required arguments were not provided: <MESSAGE>..."
    );
    let cli = parse(&["send", "-r", "2", ":42101", "add", "-1", "2"]).unwrap();
    let Command::Send(args) = cli.command else {
        panic!("{:?}", cli.command);
    };
    assert_eq!(args.replies, 2);
    assert_eq!(args.machine, address("127.0.0.1:42101"));
    assert_eq!(args.message, ["add", "-1", "2"]);
}

#[test]
fn stop_takes_an_address() {
    let cli = parse(&["stop", ":42101"]).unwrap();
    let Command::Stop(args) = cli.command else {
        panic!("{:?}", cli.command);
    };
    assert_eq!(args.machine, address("127.0.0.1:42101"));
    let line = refusal(&["stop", "42101"]);
    assert!(
        line.starts_with("invalid value '42101' for '<MACHINE>'"),
        "{line}"
    );
}

#[test]
fn list_takes_an_ip_or_an_address() {
    let cli = parse(&["list", "10.0.0.2"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::List(list::Args { host: Some(host) }) if host == address("10.0.0.2:42000")
    ));
    let line = refusal(&["list", "nowhere"]);
    assert!(
        line.starts_with("invalid value 'nowhere' for '[HOST]'"),
        "{line}"
    );
}

#[test]
fn an_unknown_option_says_so_on_one_line() {
    let line = refusal(&["list", "--bogus"]);
    assert!(
        line.starts_with("unexpected argument '--bogus' found"),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

#[test]
fn help_and_version_are_not_failures() {
    for args in [&["--help"][..], &["start", "--help"], &["--version"]] {
        let e = parse(args).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion),
            "{args:?}: {e}"
        );
    }
}
