use proptest::prelude::*;

use super::*;

fn id(n: u64) -> RequestId {
    RequestId(n)
}

fn name(text: &str) -> MachineName {
    text.parse().unwrap()
}

#[test]
fn a_start_reads_its_id_name_target_parent_and_args() {
    let r: Request = "start 3 family/Child#Bob :7000 requester a b"
        .parse()
        .unwrap();
    assert_eq!(
        r,
        Request::Start {
            id: id(3),
            name: name("family/Child#Bob"),
            target: Target::Port(7000),
            parent: Parent::Requester,
            args: vec!["a".into(), "b".into()],
        }
    );
    let r: Request = "start 4 echo/Echo 10.0.0.2:0 server".parse().unwrap();
    assert!(matches!(
        r,
        Request::Start { target: Target::Address(a), parent: Parent::Server, .. } if a.port() == 0
    ));
}

#[test]
fn names_outside_the_directory_are_refused() {
    for bad in [
        "start 1 ../../bin/sh :0 requester",
        "start 1 /bin/sh :0 requester",
        "start 1 sh :0 requester",
        "start 1 a/../../b :0 requester",
    ] {
        assert!(
            matches!(bad.parse::<Request>(), Err(ControlError::BadName(_))),
            "{bad}"
        );
    }
}

#[test]
fn a_bad_request_keeps_its_word_and_id_for_the_reply() {
    let bad = Request::parse_request("stop 9 http").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error 9 stop `http` is not a port (0-65535)"
    );
    let bad = Request::parse_request("stop x 80").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error - stop `x` is not a request id (a number from 0 to 2^64-1)"
    );
    let bad = Request::parse_request("launch 1 x/y").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error - launch unknown request `launch`; expected one of start, stop, list, register, unregister"
    );
    let bad = Request::parse_request("   ").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error - - empty request; expected one of start, stop, list, register, unregister"
    );
    let bad = Request::parse_request("list 1 everything").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error 1 list unexpected words after the last argument: everything"
    );
    let bad = Request::parse_request("start 2 a/b :99999 requester").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error 2 start `:99999` is not a port (0-65535)"
    );
    let bad = Request::parse_request("start 2 a/b :1 nobody").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error 2 start `nobody` is not a parent; expected requester or server"
    );
    let bad = Request::parse_request("start 2 a/b").unwrap_err();
    assert_eq!(
        bad.reply().to_string(),
        "error 2 start missing a target (:<port> or <ip>:<port>)"
    );
}

#[test]
fn an_over_long_request_gets_a_short_reply_with_the_length() {
    let long = "x".repeat(60_000);
    let bad = Request::parse_request(&format!("start 5 {long}/y :0 requester")).unwrap_err();
    let reply = bad.reply().to_string();
    assert!(reply.len() < 2 * MAX_REASON, "{} bytes", reply.len());
    assert!(reply.starts_with("error 5 start machine name "), "{reply}");
    assert!(
        reply.contains("is 60002 bytes long; at most 250"),
        "{reply}"
    );
    let bad = Request::parse_request(&long).unwrap_err();
    let reply = bad.reply().to_string();
    assert!(
        reply.starts_with("error - - unknown request `xxx"),
        "{reply}"
    );
    assert!(reply.contains("(60000 bytes)"), "{reply}");
    assert!(reply.len() < 300, "{reply}");
}

#[test]
fn an_error_reply_never_exceeds_its_bounds() {
    let reply = Reply::error(Some(id(1)), &"w".repeat(100), "r".repeat(100_000));
    let text = reply.to_string();
    assert!(text.starts_with("error 1 - rrr"), "{}", &text[..20]);
    assert!(text.len() < MAX_REASON + 100);
    assert!(text.ends_with("(100000 bytes)"));
}

#[test]
fn reasons_are_one_word_each() {
    for (text, reason) in [
        ("normal", ExitReason::Normal),
        ("stopped", ExitReason::Stopped),
        ("error", ExitReason::Error),
        ("orphaned", ExitReason::Orphaned),
        ("heartbeat", ExitReason::Heartbeat),
        ("unstarted", ExitReason::Unstarted),
        ("signal:9", ExitReason::Signal(9)),
        ("status:-1", ExitReason::Status(-1)),
        ("unknown", ExitReason::Unknown),
    ] {
        assert_eq!(text.parse::<ExitReason>(), Ok(reason));
        assert_eq!(reason.to_string(), text);
    }
    for bad in ["", "signal:", "signal:x", "status:+1", "Normal", "killed"] {
        assert!(bad.parse::<ExitReason>().is_err(), "{bad}");
    }
    assert!(ExitReason::Normal.is_normal());
    assert!(!ExitReason::Stopped.is_normal());
    assert!(ExitReason::Orphaned.is_orderly());
    assert!(!ExitReason::Signal(9).is_orderly());
}

#[test]
fn receivers_see_started_without_the_start_id() {
    let l: Lifecycle = "started echo/Echo 12".parse().unwrap();
    assert_eq!(l.for_receivers(), "started echo/Echo");
    let l: Lifecycle = "errored family/Child AHHHHH  twice".parse().unwrap();
    assert_eq!(l.for_receivers(), "errored family/Child AHHHHH  twice");
}

#[test]
fn ordinary_messages_are_not_control_words() {
    assert_eq!(Control::parse("add 1 2"), Ok(None));
    assert_eq!(Control::parse(""), Ok(None));
    assert!(matches!(
        Control::parse("pulsed echo/Echo"),
        Ok(Some(Control::Lifecycle(Lifecycle::Pulsed { .. })))
    ));
    assert!(Control::parse("pulsed").is_err());
    assert!(Control::parse("died 1 - x/y").is_err());
}

#[test]
fn every_word_is_in_the_grammar_once() {
    let mut words: Vec<&str> = REQUESTS
        .iter()
        .chain(REPLIES.iter())
        .chain(LIFECYCLE.iter())
        .copied()
        .chain([ERROR])
        .collect();
    words.sort_unstable();
    let mut grammar: Vec<&str> = GRAMMAR.iter().map(|(w, _)| *w).collect();
    grammar.sort_unstable();
    assert_eq!(words, grammar);
    for (word, form) in GRAMMAR {
        assert!(form.starts_with(&format!("{word} ")), "{form}");
    }
    // `Control::kind` knows every word, and of the right kind.
    for word in REQUESTS {
        assert_eq!(Control::kind(word), Some(Kind::Request), "{word}");
    }
    for word in REPLIES.iter().chain([&ERROR]) {
        assert_eq!(Control::kind(word), Some(Kind::Reply), "{word}");
    }
    for word in LIFECYCLE {
        assert_eq!(Control::kind(word), Some(Kind::Lifecycle), "{word}");
    }
    assert_eq!(Control::kind("add"), None);
}

/// `docs/operations.md` lists every form of [`GRAMMAR`] and gives examples
/// (in ```` ```control ```` blocks) that parse and print back unchanged,
/// at least one per word.
#[test]
fn operations_md_matches_the_code() {
    // Inside tables, `|` is written `\|`.
    let doc = include_str!("../../../docs/operations.md").replace("\\|", "|");
    let doc = doc.as_str();
    for (word, form) in GRAMMAR {
        assert!(
            doc.contains(&format!("`{form}`")),
            "operations.md lacks the form of {word}: `{form}`"
        );
    }
    let mut examples = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        match line.trim() {
            "```control" => inside = true,
            "```" if inside => inside = false,
            text if inside && !text.is_empty() => examples.push(text),
            _ => {}
        }
    }
    for (word, _) in GRAMMAR {
        assert!(
            examples.iter().any(|e| e.split(' ').next() == Some(word)),
            "operations.md has no example of {word}"
        );
    }
    for example in examples {
        let parsed = Control::parse(example)
            .unwrap_or_else(|e| panic!("operations.md example `{example}`: {e}"))
            .unwrap_or_else(|| panic!("operations.md example `{example}` is no control word"));
        assert_eq!(parsed.to_string(), example);
    }
}

fn word() -> impl Strategy<Value = String> {
    "[!-~]{1,12}"
}

fn machine_name() -> impl Strategy<Value = MachineName> {
    let part =
        "[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,8}".prop_filter("not . or ..", |s| s != "." && s != "..");
    (part.clone(), part.clone(), proptest::option::of(part)).prop_map(|(p, e, t)| {
        let text = match t {
            Some(t) => format!("{p}/{e}#{t}"),
            None => format!("{p}/{e}"),
        };
        text.parse().unwrap()
    })
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| Address::new(std::net::SocketAddr::from((ip, port)))),
        (any::<[u16; 8]>(), any::<u16>()).prop_map(|(ip, port)| Address::new(
            std::net::SocketAddr::from((std::net::Ipv6Addr::from(ip), port))
        )),
    ]
}

fn request_id() -> impl Strategy<Value = RequestId> {
    any::<u64>().prop_map(RequestId)
}

fn reason() -> impl Strategy<Value = ExitReason> {
    prop_oneof![
        Just(ExitReason::Normal),
        Just(ExitReason::Stopped),
        Just(ExitReason::Error),
        Just(ExitReason::Orphaned),
        Just(ExitReason::Heartbeat),
        Just(ExitReason::Unstarted),
        Just(ExitReason::Unknown),
        any::<i32>().prop_map(ExitReason::Signal),
        any::<i32>().prop_map(ExitReason::Status),
    ]
}

/// Words joined by single spaces: text as a receiver would see it.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(word(), 0..5).prop_map(|w| w.join(" "))
}

fn lifecycle() -> impl Strategy<Value = Lifecycle> {
    prop_oneof![
        (machine_name(), proptest::option::of(request_id()))
            .prop_map(|(name, start)| Lifecycle::Started { name, start }),
        machine_name().prop_map(|name| Lifecycle::Pulsed { name }),
        (machine_name(), text()).prop_map(|(name, message)| Lifecycle::Errored { name, message }),
        (machine_name(), reason()).prop_map(|(name, reason)| Lifecycle::Exited { name, reason }),
        machine_name().prop_map(|name| Lifecycle::Orphaned { name }),
        (
            proptest::option::of(request_id()),
            proptest::option::of(address()),
            machine_name(),
            reason()
        )
            .prop_map(|(start, address, name, reason)| Lifecycle::Died {
                start,
                address,
                name,
                reason
            }),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        any::<u16>().prop_map(Target::Port),
        address().prop_map(Target::Address)
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            request_id(),
            machine_name(),
            target(),
            prop_oneof![Just(Parent::Requester), Just(Parent::Server)],
            proptest::collection::vec(word(), 0..4)
        )
            .prop_map(|(id, name, target, parent, args)| Request::Start {
                id,
                name,
                target,
                parent,
                args
            }),
        (
            request_id(),
            any::<u16>(),
            proptest::option::of(0..=crate::control::MAX_GRACE_MS)
        )
            .prop_map(|(id, port, grace_ms)| Request::Stop { id, port, grace_ms }),
        request_id().prop_map(|id| Request::List { id }),
        (
            request_id(),
            machine_name(),
            any::<u32>(),
            address(),
            proptest::option::of(request_id())
        )
            .prop_map(|(id, name, pid, parent, start)| Request::Register {
                id,
                name,
                pid,
                parent,
                start
            }),
        request_id().prop_map(|id| Request::Unregister { id }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        (request_id(), any::<u32>()).prop_map(|(id, pid)| Reply::Starting { id, pid }),
        (request_id(), any::<u16>(), any::<u64>())
            .prop_map(|(id, port, grace_ms)| { Reply::Stopping { id, port, grace_ms } }),
        (request_id(), any::<u16>()).prop_map(|(id, port)| Reply::Stopped { id, port }),
        (
            request_id(),
            proptest::option::of(address()),
            any::<u32>(),
            machine_name(),
            address(),
            any::<u64>()
        )
            .prop_map(|(id, address, pid, name, parent, uptime)| Reply::Machine {
                id,
                row: Row {
                    address,
                    pid,
                    name,
                    parent,
                    uptime
                }
            }),
        (request_id(), any::<u64>()).prop_map(|(id, count)| Reply::Listed { id, count }),
        request_id().prop_map(|id| Reply::Registered { id }),
        (request_id(), proptest::option::of(address()), lifecycle()).prop_map(
            |(id, address, lifecycle)| Reply::Relayed {
                id,
                address,
                lifecycle
            }
        ),
        (proptest::option::of(request_id()), "[a-z]{1,10}", text()).prop_map(
            |(id, request, reason)| Reply::Error {
                id,
                request,
                reason
            }
        ),
    ]
}

proptest! {
    #[test]
    fn requests_print_and_parse_back(r in request()) {
        let text = r.to_string();
        prop_assert_eq!(text.parse::<Request>(), Ok(r.clone()));
        prop_assert_eq!(Control::parse(&text), Ok(Some(Control::Request(r))));
    }

    #[test]
    fn replies_print_and_parse_back(r in reply()) {
        let text = r.to_string();
        prop_assert_eq!(text.parse::<Reply>(), Ok(r.clone()));
        prop_assert_eq!(Control::parse(&text), Ok(Some(Control::Reply(r))));
    }

    #[test]
    fn lifecycle_prints_and_parses_back(l in lifecycle()) {
        let text = l.to_string();
        prop_assert_eq!(text.parse::<Lifecycle>(), Ok(l.clone()));
        prop_assert_eq!(Control::parse(&text), Ok(Some(Control::Lifecycle(l))));
    }

    #[test]
    fn any_text_parses_or_errors_without_panicking(text in "\\PC{0,80}") {
        let _ = Control::parse(&text);
        if let Err(bad) = Request::parse_request(&text) {
            let reply = bad.reply().to_string();
            prop_assert!(reply.parse::<Reply>().is_ok(), "{}", reply);
        }
    }
}
