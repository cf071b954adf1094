//! The checks that make a `#[machine]` module a well-formed state table.
//! Every problem is reported, each at the token it is about.

use std::collections::{HashMap, HashSet};

use quote::ToTokens;
use syn::{FnArg, GenericArgument, Ident, Pat, PathArguments, Type};

use crate::ctxt::Ctxt;
use crate::model::{Checked, Handler, HandlerKind, Model, Param, ParamKind, Table};

/// Checks the model; returns the table of the handlers that can be
/// generated, each with its typed parameters (the others' errors are in
/// `cx`).
pub fn validate<'m>(model: &'m Model, cx: &mut Ctxt) -> Table<'m> {
    let declared: HashSet<String> = model.states.iter().map(|s| s.ident.to_string()).collect();
    let list = declared_list(model);
    check_parents(model, &declared, &list, cx);
    check_initial(model, cx);
    check_handlers(model, &declared, &list, cx);
    let handlers = model
        .handlers
        .iter()
        .filter(|h| !h.broken)
        .filter_map(|handler| {
            let params = check_signature(handler, model.machine.as_ref(), cx)?;
            Some(Checked { handler, params })
        })
        .collect();
    Table { handlers }
}

fn declared_list(model: &Model) -> String {
    let names: Vec<String> = model
        .states
        .iter()
        .map(|s| format!("`{}`", s.ident))
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn check_parents(model: &Model, declared: &HashSet<String>, list: &str, cx: &mut Ctxt) {
    let parents: HashMap<String, String> = model
        .states
        .iter()
        .filter_map(|s| Some((s.ident.to_string(), s.parent.as_ref()?.to_string())))
        .collect();
    let mut in_reported_cycle = HashSet::new();
    for state in &model.states {
        let Some(parent) = &state.parent else {
            continue;
        };
        if !declared.contains(&parent.to_string()) {
            cx.error_spanned_by(
                parent,
                format!(
                    "unknown parent state `{parent}` of `{}`; declared states: {list}",
                    state.ident
                ),
            );
            continue;
        }
        // Follow the parents from this state; coming back to it is a cycle.
        let start = state.ident.to_string();
        let mut path = vec![start.clone()];
        let mut seen = HashSet::from([start.clone()]);
        let mut current = parent.to_string();
        loop {
            path.push(current.clone());
            if current == start {
                if !in_reported_cycle.contains(&start) {
                    in_reported_cycle.extend(path.iter().cloned());
                    cx.error_spanned_by(
                        parent,
                        format!(
                            "states form a cycle of parents: {}; a state cannot be inside itself",
                            path.join(" → ")
                        ),
                    );
                }
                break;
            }
            if !seen.insert(current.clone()) {
                break; // a cycle further up, reported from one of its own states
            }
            match parents.get(&current) {
                Some(next) => current = next.clone(),
                None => break,
            }
        }
    }
}

fn check_initial(model: &Model, cx: &mut Ctxt) {
    let initial: Vec<_> = model
        .states
        .iter()
        .filter(|s| s.initial.is_some())
        .collect();
    match initial.as_slice() {
        [_] => {}
        [] => {
            if let Some(state_enum) = &model.state_enum {
                if !model.states.is_empty() {
                    cx.error_spanned_by(
                        state_enum,
                        "no initial state: mark the state the machine starts in with #[initial]",
                    );
                } else {
                    cx.error_spanned_by(state_enum, "`enum State` has no states");
                }
            }
        }
        [first, rest @ ..] => {
            for state in rest {
                if let Some(span) = state.initial {
                    cx.error_at(
                        span,
                        format!(
                            "several initial states: `{}` is marked #[initial] but so is `{}`; a machine starts in one state",
                            state.ident, first.ident
                        ),
                    );
                }
            }
        }
    }
}

/// Notes `handler` as `state`'s entry (or exit) action in `seen`, unless
/// the state has one already: then that is the error.
fn once<'m>(
    seen: &mut HashMap<String, &'m Handler>,
    state: String,
    handler: &'m Handler,
    cx: &mut Ctxt,
) {
    if let Some(first) = seen.get(&state) {
        cx.error_spanned_by(
            &handler.state,
            format!(
                "state `{state}` already has an {} action, `{}`; a state has at most one",
                handler.kind.attr_name(),
                first.sig.ident
            ),
        );
    } else {
        seen.insert(state, handler);
    }
}

/// A message name is one word: true if `lit` is (an error says why not).
fn check_message_name(lit: &syn::LitStr, state: &str, cx: &mut Ctxt) -> bool {
    let text = lit.value();
    if text.is_empty() {
        cx.error_spanned_by(
            lit,
            format!("empty message name: write one word, or `#[receive({state})]` for the state's empty receiver"),
        );
        return false;
    }
    if !is_message_word(&text) {
        cx.error_spanned_by(
            lit,
            format!("message name {text:?} is not a single word: use letters, digits and punctuation, no spaces"),
        );
        return false;
    }
    true
}

fn check_handlers(model: &Model, declared: &HashSet<String>, list: &str, cx: &mut Ctxt) {
    let mut entries: HashMap<String, &Handler> = HashMap::new();
    let mut exits: HashMap<String, &Handler> = HashMap::new();
    let mut receivers: HashMap<(String, Option<String>), &Handler> = HashMap::new();
    let mut receiver_methods: HashSet<String> = HashSet::new();
    for handler in &model.handlers {
        if handler.broken {
            continue;
        }
        let state = handler.state.to_string();
        if declared.is_empty() {
            // No states enum, or an empty one: already reported, and every
            // handler would be "on an undeclared state" because of it.
            continue;
        }
        if !declared.contains(&state) {
            cx.error_spanned_by(
                &handler.state,
                format!(
                    "#[{}] on undeclared state `{state}`; declared states: {list}",
                    handler.kind.attr_name()
                ),
            );
            continue;
        }
        let fn_name = &handler.sig.ident;
        match &handler.kind {
            HandlerKind::Entry => once(&mut entries, state, handler, cx),
            HandlerKind::Exit => once(&mut exits, state, handler, cx),
            HandlerKind::Receive(_) if !receiver_methods.insert(fn_name.to_string()) => {
                cx.error_spanned_by(
                    &handler.state,
                    format!("`{fn_name}` is already a receiver: one #[receive] per method; write a second method (it may call the first)"),
                );
            }
            HandlerKind::Receive(message) => {
                if let Some(lit) = message {
                    if !check_message_name(lit, &state, cx) {
                        continue;
                    }
                }
                let key = (state.clone(), message.as_ref().map(|l| l.value()));
                if let Some(first) = receivers.get(&key) {
                    let what = match &key.1 {
                        Some(name) => format!("a receiver for \"{name}\""),
                        None => "an empty receiver".to_owned(),
                    };
                    let at: &dyn ToTokens = match message {
                        Some(lit) => lit,
                        None => &handler.state,
                    };
                    cx.error_spanned_by(
                        at,
                        format!(
                            "state `{state}` already has {what}, `{}`; `{fn_name}` would never run",
                            first.sig.ident
                        ),
                    );
                } else {
                    receivers.insert(key, handler);
                }
            }
        }
    }
}

/// A message name: one non-empty word of printable characters.
fn is_message_word(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// Checks `fn name(&mut self, cx: &mut Context<Self>, typed args…)` and
/// returns the typed arguments.
fn check_signature(
    handler: &Handler,
    machine: Option<&Ident>,
    cx: &mut Ctxt,
) -> Option<Vec<Param>> {
    let sig = &handler.sig;
    let is_receiver = matches!(handler.kind, HandlerKind::Receive(_));
    let expected = if is_receiver {
        "a receiver is `fn name(&mut self, cx: &mut Context<Self>, arg: Type, …)`: each typed argument is parsed from one word of the message, a last `&str` takes the rest"
    } else {
        "an entry or exit action is `fn name(&mut self, cx: &mut Context<Self>)`"
    };
    let name = &sig.ident;
    let mut ok = true;
    if !check_qualifiers(sig, expected, cx) {
        return None;
    }
    let mut inputs = sig.inputs.iter().peekable();
    let has_self = check_self(&mut inputs, name, expected, cx);
    if has_self != Some(true) {
        ok = false;
    }
    let has_self = has_self.is_some();
    match inputs.next() {
        Some(FnArg::Typed(arg)) if is_context(&arg.ty, machine) => {}
        Some(other) => {
            cx.error_spanned_by(
                other,
                format!(
                    "`{}` must take `cx: &mut Context<Self>` second: {expected}",
                    sig.ident
                ),
            );
            ok = false;
        }
        None => {
            // Without `self` either, the error above already shows the
            // whole signature.
            if has_self {
                cx.error_spanned_by(
                    &sig.inputs,
                    format!(
                        "`{}` is missing `cx: &mut Context<Self>`: {expected}",
                        sig.ident
                    ),
                );
            }
            return None;
        }
    }
    let rest: Vec<&FnArg> = inputs.collect();
    if !is_receiver {
        if let Some(first) = rest.first() {
            cx.error_spanned_by(
                first,
                format!(
                    "`{}` takes arguments but actions receive none: {expected}",
                    sig.ident
                ),
            );
            ok = false;
        }
        return ok.then(Vec::new);
    }
    let params = check_params(&rest, expected, cx);
    // Return types are left to the compiler: the generated call goes through
    // `wink::hsm::Outcome`, whose error says what a handler may return.
    params.filter(|_| ok)
}

/// `&mut self` first: `Some(true)` if so, `Some(false)` for another `self`
/// (consumed, reported), `None` for none at all (reported; the first
/// argument is left to be checked as the context).
fn check_self(
    inputs: &mut std::iter::Peekable<syn::punctuated::Iter<'_, FnArg>>,
    name: &Ident,
    expected: &str,
    cx: &mut Ctxt,
) -> Option<bool> {
    match inputs.peek() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_some() =>
        {
            inputs.next();
            Some(true)
        }
        Some(FnArg::Receiver(receiver)) => {
            cx.error_spanned_by(
                receiver,
                format!(
                    "`{name}` must take `&mut self`, not {}: {expected}",
                    if receiver.reference.is_some() {
                        "`&self`"
                    } else {
                        "`self` by value"
                    }
                ),
            );
            inputs.next();
            Some(false)
        }
        Some(FnArg::Typed(_)) | None => {
            cx.error_spanned_by(
                name,
                format!("`{name}` has no `self`: a handler is a method taking `&mut self` first; {expected}"),
            );
            None
        }
    }
}

/// `async`, `const`, `unsafe`, generics and variadics, each refused where it
/// is written: true if there are none.
fn check_qualifiers(sig: &syn::Signature, expected: &str, cx: &mut Ctxt) -> bool {
    let name = &sig.ident;
    let mut ok = true;
    // Each qualifier is named and pointed at, so the fix is obvious.
    let qualifiers: [(Option<&dyn ToTokens>, &str); 5] = [
        (
            sig.asyncness.as_ref().map(|t| t as _),
            "cannot be `async`: handlers run to completion inside one step of the machine",
        ),
        (sig.constness.as_ref().map(|t| t as _), "cannot be `const`"),
        (sig.unsafety.as_ref().map(|t| t as _), "cannot be `unsafe`"),
        (
            (!sig.generics.params.is_empty()).then_some(&sig.generics as _),
            "cannot be generic: each argument has one concrete type to parse",
        ),
        (sig.variadic.as_ref().map(|t| t as _), "cannot be variadic"),
    ];
    for (tokens, what) in qualifiers {
        if let Some(tokens) = tokens {
            cx.error_spanned_by(tokens, format!("`{name}` {what}; {expected}"));
            ok = false;
        }
    }
    ok
}

/// The typed parameters after `cx`, each checked (one word, `Option`, a
/// last `Vec` or `&str`); `None` if any is wrong (reported).
fn check_params(rest: &[&FnArg], expected: &str, cx: &mut Ctxt) -> Option<Vec<Param>> {
    let mut ok = true;
    let mut params = Vec::new();
    let mut optional = false;
    for (i, arg) in rest.iter().enumerate() {
        let FnArg::Typed(arg) = arg else { continue };
        let (ident, name) = match &*arg.pat {
            Pat::Ident(pat) => (pat.ident.clone(), pat.ident.to_string()),
            // A word the receiver does not look at: a name of the macro's
            // own, which no user name can meet.
            Pat::Wild(_) => (
                Ident::new(
                    &format!("__wink_unnamed_{i}"),
                    proc_macro2::Span::mixed_site(),
                ),
                "_".to_owned(),
            ),
            other => {
                cx.error_spanned_by(
                    other,
                    format!("receiver arguments are plain names: {expected}"),
                );
                ok = false;
                continue;
            }
        };
        let is_str = is_str_ref(&arg.ty);
        let kind = match (is_str, wrapper_of(&arg.ty)) {
            (true, _) => ParamKind::Rest,
            (false, Some("Option")) => ParamKind::Optional,
            (false, Some("Vec")) => ParamKind::All,
            _ => ParamKind::Word,
        };
        let last = i + 1 == rest.len();
        let lent = matches!(&*arg.ty, Type::Reference(r) if r.lifetime.is_some());
        if is_str && lent {
            cx.error_spanned_by(&arg.ty, format!("`{name}`: the rest of the message is lent for the call only, so it cannot be `&'… str`: write `&str` (or `String` to keep a word)"));
            ok = false;
        } else if is_str && !last {
            cx.error_spanned_by(&arg.ty, format!("`{name}: &str` takes the rest of the message, so it must be the last argument; use `String` for one word"));
            ok = false;
        } else if kind == ParamKind::All && !last {
            cx.error_spanned_by(
                &arg.ty,
                format!("`{name}: Vec<…>` takes every word left, so it must be the last argument"),
            );
            ok = false;
        } else if kind == ParamKind::Word && optional {
            cx.error_spanned_by(&arg.ty, format!("`{name}` is required but comes after an optional argument (`Option<…>`): put the optional ones last"));
            ok = false;
        } else if matches!(&*arg.ty, Type::ImplTrait(_)) {
            cx.error_spanned_by(&arg.ty, format!("argument `{name}` needs a concrete type that implements `FromStr` (`String`, `u32`, …), not `impl Trait`"));
            ok = false;
        } else if !is_str && matches!(&*arg.ty, Type::Reference(_)) {
            cx.error_spanned_by(&arg.ty, format!("argument `{name}` is a reference; receiver arguments are parsed from text into owned values (`String`, `u32`, …), except a last `&str`"));
            ok = false;
        }
        optional |= kind == ParamKind::Optional;
        params.push(Param {
            ident,
            name,
            ty: (*arg.ty).clone(),
            kind,
        });
    }
    ok.then_some(params)
}

/// `&mut Context<Self>` (or `&mut Context<Machine>`, naming the machine).
fn is_context(ty: &Type, machine: Option<&Ident>) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    if reference.mutability.is_none() {
        return false;
    }
    let Type::Path(path) = &*reference.elem else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    let mut args = args.args.iter();
    let (Some(GenericArgument::Type(Type::Path(arg))), None) = (args.next(), args.next()) else {
        return false;
    };
    last.ident == "Context"
        && arg.qself.is_none()
        && arg
            .path
            .get_ident()
            .is_some_and(|ident| ident == "Self" || Some(ident) == machine)
}

/// `Option` or `Vec` when `ty` is `Option<T>` or `Vec<T>` (by its last
/// path segment, with one type argument).
fn wrapper_of(ty: &Type) -> Option<&'static str> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    if args.args.len() != 1 || !matches!(args.args.first(), Some(GenericArgument::Type(_))) {
        return None;
    }
    match last.ident.to_string().as_str() {
        "Option" => Some("Option"),
        "Vec" => Some("Vec"),
        _ => None,
    }
}

fn is_str_ref(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    reference.mutability.is_none()
        && matches!(&*reference.elem, Type::Path(p) if p.path.is_ident("str"))
}
