//! What a `#[machine]` module declares, as the rest of the macro sees it.

use proc_macro2::Span;
use syn::{Ident, ItemMod, LitStr, Signature, Type};

/// A `#[machine]` module after parsing: the module itself (with Wink's
/// attributes removed) and what those attributes said.
pub struct Model {
    /// The module, ready to be emitted again.
    pub module: ItemMod,
    /// The name of the states enum, `State`.
    pub state_enum: Option<Ident>,
    /// The machine type: the `Self` of the impl holding the handlers.
    pub machine: Option<Ident>,
    /// The states, in declaration order.
    pub states: Vec<StateDecl>,
    /// The entry, exit and receive handlers, in declaration order.
    pub handlers: Vec<Handler>,
    /// `#[machine(upgrade)]`: the machine's data and state carry over a
    /// live upgrade (serde).
    pub upgrade: bool,
    /// The generics of the handlers' `impl`, when it has any (an error):
    /// the stand-in table uses them, so no error follows from it.
    pub generics: Option<syn::Generics>,
    /// Without handlers (an error), the module's first struct: the
    /// stand-in table is for it, so code that runs the machine still
    /// type-checks.
    pub stand_in: Option<Ident>,
}

/// One variant of the states enum.
pub struct StateDecl {
    /// The variant.
    pub ident: Ident,
    /// `#[parent(X)]`: the `X`.
    pub parent: Option<Ident>,
    /// `#[initial]`: where it was written.
    pub initial: Option<Span>,
    /// Its `#[cfg(…)]` attributes: what the table says of it has them too.
    pub cfgs: Vec<syn::Attribute>,
}

/// What a handler is for.
pub enum HandlerKind {
    /// `#[entry(S)]`
    Entry,
    /// `#[exit(S)]`
    Exit,
    /// `#[receive(S, "name")]`, or `#[receive(S)]` for the empty receiver.
    Receive(Option<LitStr>),
}

/// A method with `#[entry]`, `#[exit]` or `#[receive]`.
pub struct Handler {
    /// What it is for.
    pub kind: HandlerKind,
    /// The state it belongs to.
    pub state: Ident,
    /// The method's signature.
    pub sig: Signature,
    /// Its attribute did not parse (the error is reported): it is kept out
    /// of every check and of the table.
    pub broken: bool,
    /// The method's `#[cfg(…)]` attributes: its arms in the table have
    /// them too.
    pub cfgs: Vec<syn::Attribute>,
    /// The last name of each path in a `transition(…)` call in its body
    /// (`cx.transition(State::On)`: `On`), for the diagrams; those that
    /// are no state are left out when drawing.
    pub targets: Vec<Ident>,
}

/// The model after validation: each handler that can be generated (its
/// attribute read, its signature right), with its parameters.
pub struct Table<'m> {
    /// In declaration order.
    pub handlers: Vec<Checked<'m>>,
}

/// A handler that passed validation.
pub struct Checked<'m> {
    /// The handler.
    pub handler: &'m Handler,
    /// Its typed parameters (none for actions).
    pub params: Vec<Param>,
}

/// One typed argument of a receiver, after validation.
pub struct Param {
    /// The parameter's name (one of the macro's own for `_`).
    pub ident: Ident,
    /// The name errors give it.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// How many words it takes.
    pub kind: ParamKind,
}

/// How many words of the message a receiver parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// One word, parsed with `FromStr`.
    Word,
    /// `Option<T>`: the next word if there is one.
    Optional,
    /// `Vec<T>`: every word left.
    All,
    /// A last `&str`: the rest of the text as written.
    Rest,
}

impl HandlerKind {
    /// The attribute's name, for messages.
    pub fn attr_name(&self) -> &'static str {
        match self {
            HandlerKind::Entry => "entry",
            HandlerKind::Exit => "exit",
            HandlerKind::Receive(_) => "receive",
        }
    }
}
