//! syn → [`Model`]: finds the states enum and the handlers, reads Wink's
//! attributes and removes them from the items.

use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, Ident, ImplItem, Item, ItemMod, LitStr, Path, Token, Type};

use crate::ctxt::Ctxt;
use crate::model::{Handler, HandlerKind, Model, StateDecl};

/// The name the states enum must have.
pub const STATE_ENUM: &str = "State";

/// Reads a `#[machine]` module. Errors go to `cx`; the model holds whatever
/// could be read, so validation can still report more.
pub fn parse(mut module: ItemMod, cx: &mut Ctxt) -> Model {
    let mut model = Model {
        module: ItemMod {
            content: None,
            ..module.clone()
        },
        state_enum: None,
        machine: None,
        states: Vec::new(),
        handlers: Vec::new(),
        upgrade: false,
        generics: None,
        stand_in: None,
    };
    let Some((_, items)) = module.content.as_mut() else {
        cx.error_spanned_by(
            &module,
            "#[machine] needs an inline module: `mod name { … }` with the states enum and the handlers inside",
        );
        return model;
    };
    let misnamed = misnamed_states_enum(items, cx);
    let mut second_enum = None;
    for (index, item) in items.iter_mut().enumerate() {
        match item {
            Item::Enum(item) if item.ident == STATE_ENUM || misnamed == Some(index) => {
                if model.state_enum.is_some() {
                    cx.error_spanned_by(
                        &item.ident,
                        "a second `enum State`: a machine has one states enum",
                    );
                    // Left out, so that it is the one error.
                    second_enum.get_or_insert(index);
                    continue;
                }
                read_states(item, &mut model, cx);
            }
            Item::Impl(item) => read_impl(item, &mut model, cx),
            Item::Struct(s) => {
                model.stand_in.get_or_insert_with(|| s.ident.clone());
                misplaced(&mut s.attrs, ALL_ATTRS, "a struct", cx);
            }
            Item::Fn(f) => misplaced(&mut f.attrs, ALL_ATTRS, "a free function", cx),
            Item::Const(c) => misplaced(&mut c.attrs, ALL_ATTRS, "a const", cx),
            Item::Static(s) => misplaced(&mut s.attrs, ALL_ATTRS, "a static", cx),
            Item::Type(t) => misplaced(&mut t.attrs, ALL_ATTRS, "a type", cx),
            Item::Enum(e) => misplaced(&mut e.attrs, ALL_ATTRS, "an enum", cx),
            _ => {}
        }
    }
    if let Some(index) = second_enum {
        items[index] = Item::Verbatim(proc_macro2::TokenStream::new());
    }
    if model.state_enum.is_none() {
        cx.error_spanned_by(
            &module.ident,
            format!(
                "#[machine] module `{}` has no `enum State {{ … }}` listing its states",
                module.ident
            ),
        );
    }
    if model.machine.is_none() {
        cx.error_spanned_by(
            &module.ident,
            format!(
                "#[machine] module `{}` has no handlers: add an `impl` whose methods carry #[entry(State)], #[exit(State)] or #[receive(State, \"message\")]",
                module.ident
            ),
        );
    }
    model.module = module;
    model
}

/// The attributes of handlers.
const HANDLER_ATTRS: &[&str] = &["entry", "exit", "receive"];
/// The attributes of states.
const STATE_ATTRS: &[&str] = &["initial", "parent"];
/// Every attribute of Wink's.
const ALL_ATTRS: &[&str] = &["entry", "exit", "receive", "initial", "parent"];

/// Reads the states enum `item` into `model`.
fn read_states(item: &mut syn::ItemEnum, model: &mut Model, cx: &mut Ctxt) {
    model.state_enum = Some(item.ident.clone());
    for variant in &mut item.variants {
        if !matches!(variant.fields, Fields::Unit) {
            cx.error_spanned_by(
                &variant.fields,
                format!("state `{}` has fields: states are plain names; keep data in the machine struct", variant.ident),
            );
            // Emitted as a plain state, so the stand-in table
            // still type-checks the handlers: without it, every
            // `cx` would be an error too.
            variant.fields = Fields::Unit;
        }
        if let Some((_, discriminant)) = &variant.discriminant {
            cx.error_spanned_by(discriminant, "states take no explicit values");
        }
        let mut state = StateDecl {
            ident: variant.ident.clone(),
            parent: None,
            initial: None,
            cfgs: cfgs(&variant.attrs),
        };
        variant
            .attrs
            .retain(|attr| !read_state_attr(attr, &mut state, cx));
        misplaced(&mut variant.attrs, HANDLER_ATTRS, "a state", cx);
        model.states.push(state);
    }
}

/// Reads the handlers of the `impl` `item` into `model`.
fn read_impl(item: &mut syn::ItemImpl, model: &mut Model, cx: &mut Ctxt) {
    let mut has_handlers = false;
    for impl_item in &mut item.items {
        let method = match impl_item {
            ImplItem::Fn(method) => method,
            ImplItem::Const(c) => {
                misplaced(&mut c.attrs, ALL_ATTRS, "a const", cx);
                continue;
            }
            ImplItem::Type(t) => {
                misplaced(&mut t.attrs, ALL_ATTRS, "a type", cx);
                continue;
            }
            _ => continue,
        };
        let sig = method.sig.clone();
        let method_cfgs = cfgs(&method.attrs);
        let mut targets = Vec::new();
        transition_targets(method.block.to_token_stream(), &mut targets);
        conditional(&mut method.attrs, cx);
        method
            .attrs
            .retain(|attr| match read_handler_attr(attr, &sig, cx) {
                Some(mut handler) => {
                    handler.cfgs = method_cfgs.clone();
                    handler.targets = targets.clone();
                    model.handlers.push(handler);
                    has_handlers = true;
                    false
                }
                None => true,
            });
        misplaced(&mut method.attrs, STATE_ATTRS, "a method", cx);
    }
    if has_handlers {
        note_machine(&item.self_ty, model, cx);
        if item.trait_.is_some() {
            cx.error_spanned_by(
                &item.self_ty,
                "handlers belong in an inherent `impl Machine { … }`, not a trait impl",
            );
        }
        if !item.generics.params.is_empty() {
            cx.error_spanned_by(&item.generics, "generic machines are not supported: the machine is one concrete type (keep what varies in its fields)");
            model.generics = Some(item.generics.clone());
        }
    }
}

/// Every `transition(…)` call in `tokens`: the last identifier of its
/// argument (`State::On` gives `On`), in order, once each.
fn transition_targets(tokens: proc_macro2::TokenStream, targets: &mut Vec<Ident>) {
    use proc_macro2::{Delimiter, TokenTree};
    let mut after_transition = false;
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => after_transition = ident == "transition",
            TokenTree::Group(group) => {
                if after_transition && group.delimiter() == Delimiter::Parenthesis {
                    let last = group.stream().into_iter().filter_map(|t| match t {
                        TokenTree::Ident(ident) => Some(ident),
                        _ => None,
                    });
                    if let Some(last) = last.last() {
                        if !targets.contains(&last) {
                            targets.push(last);
                        }
                    }
                }
                after_transition = false;
                transition_targets(group.stream(), targets);
            }
            _ => after_transition = false,
        }
    }
}

/// The `#[cfg(…)]` attributes among `attrs`.
fn cfgs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect()
}

/// Takes Wink's attributes named in `names` off an item they cannot go
/// on (`what`), each with an error saying where it goes: rustc would
/// otherwise say it cannot find the attribute, as if an import were
/// missing.
fn misplaced(attrs: &mut Vec<Attribute>, names: &[&str], what: &str, cx: &mut Ctxt) {
    attrs.retain(|attr| {
        let Some(name) = names.iter().find(|n| attr.path().is_ident(n)) else {
            return true;
        };
        let place = if STATE_ATTRS.contains(name) {
            "a variant of `enum State`"
        } else {
            "a method of the machine's `impl`"
        };
        cx.error_spanned_by(attr, format!("`#[{name}]` goes on {place}, not on {what}"));
        false
    });
}

/// Takes `#[cfg_attr(…, <Wink attribute>)]` off a method, with an error:
/// Wink reads its attributes before any `cfg` is decided.
fn conditional(attrs: &mut Vec<Attribute>, cx: &mut Ctxt) {
    attrs.retain(|attr| {
        if !attr.path().is_ident("cfg_attr") {
            return true;
        }
        let tokens = attr.meta.to_token_stream().to_string();
        let named = ALL_ATTRS.iter().find(|name| {
            tokens
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|word| word == **name)
        });
        match named {
            Some(name) => {
                cx.error_spanned_by(attr, format!("`#[{name}]` cannot be made conditional with `cfg_attr`: put `#[cfg(…)]` on the method instead"));
                false
            }
            None => true,
        }
    });
}

/// Without an `enum State`, an enum whose variants carry `#[initial]` or
/// `#[parent]` was meant to be it: says so, and returns its index so that it
/// is read as the states enum and the rest of the module is still checked.
fn misnamed_states_enum(items: &[Item], cx: &mut Ctxt) -> Option<usize> {
    let is_enum_named_state = |item: &Item| matches!(item, Item::Enum(e) if e.ident == STATE_ENUM);
    if items.iter().any(is_enum_named_state) {
        return None;
    }
    let (index, item) = items
        .iter()
        .enumerate()
        .find_map(|(index, item)| match item {
            Item::Enum(item)
                if item.variants.iter().any(|v| {
                    v.attrs
                        .iter()
                        .any(|a| a.path().is_ident("initial") || a.path().is_ident("parent"))
                }) =>
            {
                Some((index, item))
            }
            _ => None,
        })?;
    cx.error_spanned_by(
        &item.ident,
        format!(
            "the states enum must be called `State`, not `{}`",
            item.ident
        ),
    );
    Some(index)
}

/// Reads `#[initial]` and `#[parent(X)]`; true if the attribute was Wink's.
fn read_state_attr(attr: &Attribute, state: &mut StateDecl, cx: &mut Ctxt) -> bool {
    if attr.path().is_ident("initial") {
        if let Err(e) = attr.meta.require_path_only() {
            cx.syn_error(syn::Error::new(
                e.span(),
                "write `#[initial]`, with no arguments",
            ));
        }
        if state.initial.is_some() {
            cx.error_spanned_by(
                attr,
                format!("state `{}` is marked #[initial] twice", state.ident),
            );
        }
        state.initial = Some(attr.path().span());
        true
    } else if attr.path().is_ident("parent") {
        match attr.parse_args::<Path>().and_then(|path| last_ident(&path)) {
            Ok(parent) => {
                if state.parent.is_some() {
                    cx.error_spanned_by(
                        attr,
                        format!("state `{}` has two #[parent] attributes", state.ident),
                    );
                }
                state.parent = Some(parent);
            }
            Err(e) => cx.syn_error(syn::Error::new(
                e.span(),
                "write `#[parent(State)]` with the name of one state",
            )),
        }
        true
    } else {
        false
    }
}

/// Reads `#[entry(S)]`, `#[exit(S)]`, `#[receive(S, "name")]` and
/// `#[receive(S)]`; `None` if the attribute is not Wink's (or is broken, in
/// which case the error is in `cx` and the attribute is kept out of the
/// model).
fn read_handler_attr(attr: &Attribute, sig: &syn::Signature, cx: &mut Ctxt) -> Option<Handler> {
    let kind = if attr.path().is_ident("entry") {
        HandlerKind::Entry
    } else if attr.path().is_ident("exit") {
        HandlerKind::Exit
    } else if attr.path().is_ident("receive") {
        HandlerKind::Receive(None)
    } else {
        return None;
    };
    let parsed = match kind {
        HandlerKind::Receive(_) => attr
            .parse_args_with(Punctuated::<ReceiveArg, Token![,]>::parse_terminated)
            .and_then(|args| receive_args(attr, args)),
        _ => attr
            .parse_args::<Path>()
            .and_then(|path| last_ident(&path))
            .map(|state| (state, HandlerKind::Entry))
            .map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!(
                        "write `#[{}(State)]` with the name of one state",
                        kind.attr_name()
                    ),
                )
            }),
    };
    match parsed {
        Ok((state, parsed_kind)) => Some(Handler {
            kind: match kind {
                HandlerKind::Receive(_) => parsed_kind,
                other => other,
            },
            state,
            sig: sig.clone(),
            broken: false,
            cfgs: Vec::new(),
            targets: Vec::new(),
        }),
        Err(e) => {
            cx.syn_error(e);
            // Still Wink's attribute, so it is removed from the method (else
            // rustc would add "unknown attribute"); the handler is marked
            // broken, and validation and generation leave it out.
            Some(Handler {
                kind: HandlerKind::Entry,
                state: sig.ident.clone(),
                sig: sig.clone(),
                broken: true,
                cfgs: Vec::new(),
                targets: Vec::new(),
            })
        }
    }
}

enum ReceiveArg {
    State(Path),
    Message(LitStr),
}

impl syn::parse::Parse for ReceiveArg {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            input.parse().map(ReceiveArg::Message)
        } else if input.peek(syn::LitByteStr) {
            let lit: syn::LitByteStr = input.parse()?;
            let text = String::from_utf8_lossy(&lit.value()).into_owned();
            Err(syn::Error::new(
                lit.span(),
                format!("the message name is a string, `{text:?}`, not a byte string"),
            ))
        } else if input.peek(syn::Lit) {
            let lit: syn::Lit = input.parse()?;
            Err(syn::Error::new(
                lit.span(),
                "the message name is a string literal: `\"name\"`",
            ))
        } else {
            input.parse().map(ReceiveArg::State)
        }
    }
}

fn receive_args(
    attr: &Attribute,
    args: Punctuated<ReceiveArg, Token![,]>,
) -> syn::Result<(Ident, HandlerKind)> {
    let usage = "write `#[receive(State, \"message\")]`, or `#[receive(State)]` for the state's empty receiver";
    let mut args = args.into_iter();
    let state = match args.next() {
        Some(ReceiveArg::State(path)) => last_ident(&path)?,
        Some(ReceiveArg::Message(lit)) => return Err(syn::Error::new(lit.span(), usage)),
        None => return Err(syn::Error::new(attr.span(), usage)),
    };
    let message = match args.next() {
        None => None,
        Some(ReceiveArg::Message(lit)) => Some(lit),
        Some(ReceiveArg::State(path)) => {
            return Err(syn::Error::new(
                path.span(),
                format!("the message name is a string: {usage}"),
            ))
        }
    };
    if let Some(extra) = args.next() {
        let span = match extra {
            ReceiveArg::State(path) => path.span(),
            ReceiveArg::Message(lit) => lit.span(),
        };
        return Err(syn::Error::new(
            span,
            format!("one state and one message name: {usage}"),
        ));
    }
    Ok((state, HandlerKind::Receive(message)))
}

/// `Off` from `Off` or `State::Off`.
fn last_ident(path: &Path) -> syn::Result<Ident> {
    match path.segments.last() {
        Some(segment) if segment.arguments.is_none() => Ok(segment.ident.clone()),
        _ => Err(syn::Error::new_spanned(
            path,
            "expected the name of a state",
        )),
    }
}

fn note_machine(self_ty: &Type, model: &mut Model, cx: &mut Ctxt) {
    let ident = match self_ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|s| s.ident.clone())
        }
        _ => None,
    };
    let Some(ident) = ident else {
        cx.error_spanned_by(self_ty, "handlers must be in `impl MachineStruct { … }`");
        return;
    };
    match &model.machine {
        Some(existing) if *existing != ident => cx.error_spanned_by(
            self_ty,
            format!("handlers are on `{existing}` already: one machine type per #[machine] module"),
        ),
        Some(_) => {}
        None => model.machine = Some(ident),
    }
}
