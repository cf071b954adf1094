//! [`Model`] → tokens: the module as written, plus the state table, the
//! message resolver, the dispatch `match` and the description.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Item, LitStr};

use crate::model::{Checked, Handler, HandlerKind, Model, Param, ParamKind, Table};

/// The expansion of a valid machine.
pub fn generate(model: &Model, table: &Table<'_>) -> TokenStream {
    let (Some(state_enum), Some(machine)) = (&model.state_enum, &model.machine) else {
        return fallback(model);
    };
    let state_id = state_id_impl(model, state_enum);
    let machine_impl = machine_impl(model, table, state_enum, machine);
    emit_module(model, quote!(#state_id #machine_impl))
}

/// The expansion next to errors: the module with Wink's attributes removed
/// and a stand-in table, so that code using the machine still type-checks
/// and the only errors shown are the ones that matter.
pub fn fallback(model: &Model) -> TokenStream {
    let mut extra = TokenStream::new();
    if let Some(machine) = model.machine.as_ref().or(model.stand_in.as_ref()) {
        // A generic machine (an error) gets a table for every `T`, so that
        // no error follows from it.
        let mut generics = model.generics.clone().unwrap_or_default();
        for param in generics.type_params_mut() {
            param.bounds.push(syn::parse_quote!('static));
        }
        let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
        // Without a usable states enum, a hidden one stands in, so that
        // `Context<Self>` in the handlers is still well-formed.
        let (state_enum, first) = match (&model.state_enum, model.states.first()) {
            (Some(state_enum), Some(first)) => (state_enum.clone(), first.ident.clone()),
            _ => {
                let stand_in = format_ident!("__Wink{}State", machine);
                extra.extend(quote! {
                    #[doc(hidden)]
                    #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
                    pub enum #stand_in { None }
                });
                (stand_in, format_ident!("None"))
            }
        };
        extra.extend(quote! {
            #[automatically_derived]
            impl ::wink::hsm::StateId for #state_enum {
                const INITIAL: Self = #state_enum::#first;
                fn name(self) -> &'static str { ::core::unreachable!() }
                fn parent(self) -> ::core::option::Option<Self> { ::core::unreachable!() }
                fn from_name(_: &str) -> ::core::option::Option<Self> { ::core::unreachable!() }
                fn lineage(self) -> &'static [Self] { ::core::unreachable!() }
            }
            #[automatically_derived]
            impl #impl_generics ::wink::hsm::Machine for #machine #ty_generics #where_clause {
                type State = #state_enum;
                type Message = ();
                fn description() -> &'static ::wink::hsm::Description { ::core::unreachable!() }
                fn message(_: &str) {}
                fn entry(&mut self, _: #state_enum, _: &mut ::wink::hsm::Context<Self>) -> ::core::result::Result<(), ::std::string::String> { ::core::unreachable!() }
                fn exit(&mut self, _: #state_enum, _: &mut ::wink::hsm::Context<Self>) -> ::core::result::Result<(), ::std::string::String> { ::core::unreachable!() }
                fn receive(&mut self, _: #state_enum, _: (), _: &str, _: &str, _: &mut ::wink::hsm::Context<Self>) -> ::core::option::Option<::core::result::Result<(), ::std::boxed::Box<::wink::hsm::ReceiveError>>> { ::core::unreachable!() }
            }
        });
    }
    emit_module(model, extra)
}

/// The module's own items (the states enum with the derives the table
/// needs), then `extra`.
fn emit_module(model: &Model, extra: TokenStream) -> TokenStream {
    let module = &model.module;
    let attrs = &module.attrs;
    let vis = &module.vis;
    let ident = &module.ident;
    let items = module
        .content
        .as_ref()
        .map(|(_, items)| items.as_slice())
        .unwrap_or_default();
    let items = items.iter().map(|item| match item {
        Item::Enum(item) if Some(&item.ident) == model.state_enum.as_ref() => {
            let derives = missing_derives(&item.attrs);
            quote!(#derives #item)
        }
        other => quote!(#other),
    });
    quote! {
        #(#attrs)*
        #vis mod #ident {
            #[allow(unused_imports)]
            use ::wink::prelude::*;
            #(#items)*
            #extra
        }
    }
}

/// `#[derive(…)]` of whichever of Clone, Copy, PartialEq, Eq, Debug, Hash the
/// user did not derive already.
fn missing_derives(attrs: &[syn::Attribute]) -> TokenStream {
    let mut present = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            if let Some(last) = meta.path.segments.last() {
                present.push(last.ident.to_string());
            }
            Ok(())
        });
    }
    let missing: Vec<Ident> = ["Clone", "Copy", "PartialEq", "Eq", "Debug", "Hash"]
        .iter()
        .filter(|name| !present.iter().any(|p| p == *name))
        .map(|name| Ident::new(name, Span::call_site()))
        .collect();
    if missing.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[derive(#(#missing),*)])
    }
}

fn state_id_impl(model: &Model, state_enum: &Ident) -> TokenStream {
    let initial = model
        .states
        .iter()
        .find(|s| s.initial.is_some())
        .unwrap_or(&model.states[0]);
    let initial = &initial.ident;
    let names = model.states.iter().map(|s| {
        let (ident, cfgs) = (&s.ident, &s.cfgs);
        let name = ident.to_string();
        quote!(#(#cfgs)* #state_enum::#ident => #name)
    });
    let parents = model.states.iter().map(|s| {
        let (ident, cfgs) = (&s.ident, &s.cfgs);
        match &s.parent {
            Some(parent) => {
                quote!(#(#cfgs)* #state_enum::#ident => ::core::option::Option::Some(#state_enum::#parent))
            }
            None => quote!(#(#cfgs)* #state_enum::#ident => ::core::option::Option::None),
        }
    });
    let from_names = model.states.iter().map(|s| {
        let (ident, cfgs) = (&s.ident, &s.cfgs);
        let name = ident.to_string();
        quote!(#(#cfgs)* #name => ::core::option::Option::Some(#state_enum::#ident))
    });
    // How deep each state is, counted here once rather than by walking
    // its parents at every transition (the parents form no cycle: that was
    // checked).
    let depths = model.states.iter().map(|s| {
        let (ident, cfgs) = (&s.ident, &s.cfgs);
        let mut depth = 0usize;
        let mut parent = s.parent.as_ref();
        while let Some(p) = parent {
            depth += 1;
            if depth > model.states.len() {
                break;
            }
            parent = model
                .states
                .iter()
                .find(|s| s.ident == *p)
                .and_then(|s| s.parent.as_ref());
        }
        quote!(#(#cfgs)* #state_enum::#ident => #depth)
    });
    let lineages = model.states.iter().map(|s| {
        let (ident, cfgs) = (&s.ident, &s.cfgs);
        let mut chain = vec![ident.clone()];
        let mut parent = s.parent.as_ref();
        while let Some(p) = parent {
            if chain.len() > model.states.len() {
                break;
            }
            chain.push(p.clone());
            parent = model
                .states
                .iter()
                .find(|s| s.ident == *p)
                .and_then(|s| s.parent.as_ref());
        }
        chain.reverse();
        quote!(#(#cfgs)* #state_enum::#ident => &[#(#state_enum::#chain),*])
    });
    quote! {
        #[automatically_derived]
        impl ::wink::hsm::StateId for #state_enum {
            const INITIAL: Self = #state_enum::#initial;
            fn name(self) -> &'static str {
                match self { #(#names,)* }
            }
            fn parent(self) -> ::core::option::Option<Self> {
                match self { #(#parents,)* }
            }
            fn from_name(name: &str) -> ::core::option::Option<Self> {
                match name { #(#from_names,)* _ => ::core::option::Option::None }
            }
            fn depth(self) -> usize {
                match self { #(#depths,)* }
            }
            fn lineage(self) -> &'static [Self] {
                match self { #(#lineages,)* }
            }
        }
    }
}

fn machine_impl(
    model: &Model,
    table: &Table<'_>,
    state_enum: &Ident,
    machine: &Ident,
) -> TokenStream {
    let message_enum = format_ident!("__Wink{}Message", machine);
    let messages = Messages::of(model);
    let arms = Arms::of(model, table, state_enum, &message_enum, &messages);
    let Arms {
        entry,
        exit,
        named,
        empty,
        wrappers,
    } = arms;
    let variants = &messages.variants;
    let name_lits = &messages.names;
    let upgrade = upgrade_methods(model);
    let description = description(model, machine);
    quote! {
        #[doc(hidden)]
        #[derive(Clone, Copy, Debug)]
        pub enum #message_enum { #(#variants,)* Unknown }

        #[automatically_derived]
        impl ::wink::hsm::Machine for #machine {
            type State = #state_enum;
            type Message = #message_enum;

            fn description() -> &'static ::wink::hsm::Description {
                #description
            }

            fn message(name: &str) -> #message_enum {
                match name {
                    #(#name_lits => #message_enum::#variants,)*
                    _ => #message_enum::Unknown,
                }
            }

            #upgrade

            #[allow(unreachable_patterns)]
            fn entry(&mut self, state: #state_enum, cx: &mut ::wink::hsm::Context<Self>) -> ::core::result::Result<(), ::std::string::String> {
                match state {
                    #(#entry)*
                    _ => ::core::result::Result::Ok(()),
                }
            }

            #[allow(unreachable_patterns)]
            fn exit(&mut self, state: #state_enum, cx: &mut ::wink::hsm::Context<Self>) -> ::core::result::Result<(), ::std::string::String> {
                match state {
                    #(#exit)*
                    _ => ::core::result::Result::Ok(()),
                }
            }

            #[allow(unreachable_patterns, unused_variables)]
            fn receive(
                &mut self,
                state: #state_enum,
                message: #message_enum,
                text: &str,
                args: &str,
                cx: &mut ::wink::hsm::Context<Self>,
            ) -> ::core::option::Option<::core::result::Result<(), ::std::boxed::Box<::wink::hsm::ReceiveError>>> {
                match (state, message) {
                    #(#named)*
                    #(#empty)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl #machine {
            #(#wrappers)*
        }
    }
}

/// `save` and `restore` for `#[machine(upgrade)]`; nothing otherwise.
fn upgrade_methods(model: &Model) -> TokenStream {
    if !model.upgrade {
        return TokenStream::new();
    }
    quote! {
        fn save(&self) -> ::core::option::Option<::core::result::Result<::std::vec::Vec<u8>, ::std::string::String>> {
            ::core::option::Option::Some(::wink::upgrade::save(self))
        }

        fn restore(data: &[u8]) -> ::core::option::Option<::core::result::Result<Self, ::std::string::String>> {
            ::core::option::Option::Some(::wink::upgrade::restore(data))
        }
    }
}

/// The message names the machine has receivers for, each with its variant
/// of the message enum: a name resolves once per message, then each level
/// of the lineage is a `match` on two enums.
struct Messages {
    names: Vec<LitStr>,
    /// Named after their messages (`"set-level"`: `SetLevel`), for
    /// readable expansions and debug output.
    variants: Vec<Ident>,
}

impl Messages {
    fn of(model: &Model) -> Self {
        let mut names: Vec<String> = Vec::new();
        for handler in &model.handlers {
            if let HandlerKind::Receive(Some(lit)) = &handler.kind {
                if !names.contains(&lit.value()) {
                    names.push(lit.value());
                }
            }
        }
        let mut taken: Vec<String> = vec!["Unknown".to_owned()];
        let variants = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut camel = camel_case(name);
                if camel.is_empty()
                    || camel.starts_with(|c: char| c.is_ascii_digit())
                    || taken.contains(&camel)
                {
                    camel = format!("M{i}{camel}");
                }
                taken.push(camel.clone());
                Ident::new(&camel, Span::call_site())
            })
            .collect();
        let names = names
            .iter()
            .map(|n| LitStr::new(n, Span::call_site()))
            .collect();
        Messages { names, variants }
    }

    /// The variant of message `name`.
    fn variant(&self, name: &str) -> Option<&Ident> {
        let index = self.names.iter().position(|n| n.value() == name)?;
        self.variants.get(index)
    }
}

/// The arms of the generated `entry`, `exit` and `receive`, and the
/// receivers' argument-parsing wrappers.
struct Arms {
    entry: Vec<TokenStream>,
    exit: Vec<TokenStream>,
    named: Vec<TokenStream>,
    empty: Vec<TokenStream>,
    wrappers: Vec<TokenStream>,
}

impl Arms {
    fn of(
        model: &Model,
        table: &Table<'_>,
        state_enum: &Ident,
        message_enum: &Ident,
        messages: &Messages,
    ) -> Self {
        let mut arms = Arms {
            entry: Vec::new(),
            exit: Vec::new(),
            named: Vec::new(),
            empty: Vec::new(),
            wrappers: Vec::new(),
        };
        for Checked { handler, params } in &table.handlers {
            let state = &handler.state;
            let method = &handler.sig.ident;
            let action = outcome_call(handler, quote!(self, cx));
            // Configured out with the handler, or with its state.
            let cfgs = handler.cfgs.iter().chain(
                model
                    .states
                    .iter()
                    .filter(|s| s.ident == *state)
                    .flat_map(|s| &s.cfgs),
            );
            let cfgs = quote!(#(#cfgs)*);
            match &handler.kind {
                HandlerKind::Entry => arms
                    .entry
                    .push(quote!(#cfgs #state_enum::#state => #action,)),
                HandlerKind::Exit => arms
                    .exit
                    .push(quote!(#cfgs #state_enum::#state => #action,)),
                HandlerKind::Receive(message) => {
                    let wrapper = format_ident!("__wink_receive_{}", method);
                    arms.wrappers
                        .push(receive_wrapper(handler, params, &wrapper));
                    match message.as_ref().and_then(|lit| messages.variant(&lit.value())) {
                        Some(v) => arms.named.push(quote! {
                            #cfgs (#state_enum::#state, #message_enum::#v) =>
                                ::core::option::Option::Some(self.#wrapper(args, cx)),
                        }),
                        None => arms.empty.push(quote! {
                            #cfgs (#state_enum::#state, _) => ::core::option::Option::Some(self.#wrapper(text, cx)),
                        }),
                    }
                }
            }
        }
        arms
    }
}

/// A method that parses the receiver's arguments from the text and calls it.
fn receive_wrapper(handler: &Handler, params: &[Param], wrapper: &Ident) -> TokenStream {
    let method = &handler.sig.ident;
    let receiver = method.to_string();
    // Named receivers get the words after the message name; empty
    // receivers get the whole message.
    // The wrapper's own names are the macro's (mixed-site hygiene): a
    // parameter may be called `args`, `text` or `cx` and meets none of them.
    let text = Ident::new("text", Span::mixed_site());
    let cx = Ident::new("cx", Span::mixed_site());
    let args = Ident::new("args", Span::mixed_site());
    let args_new = quote!(::wink::hsm::Args::new(#receiver, #text));
    let bindings = params.iter().map(|p| {
        let ident = &p.ident;
        let ty = &p.ty;
        let name = &p.name;
        match p.kind {
            ParamKind::Rest => quote!(let #ident: &str = #args.rest();),
            ParamKind::Word => quote_spanned!(ty.span()=> let #ident: #ty = #args.next(#name)?;),
            ParamKind::Optional => {
                quote_spanned!(ty.span()=> let #ident: #ty = #args.optional(#name)?;)
            }
            ParamKind::All => quote_spanned!(ty.span()=> let #ident: #ty = #args.all(#name)?;),
        }
    });
    let idents = params.iter().map(|p| &p.ident);
    let call = outcome_call(handler, quote!(self, #cx, #(#idents),*));
    let cfgs = &handler.cfgs;
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #wrapper(&mut self, #text: &str, #cx: &mut ::wink::hsm::Context<Self>) -> ::core::result::Result<(), ::std::boxed::Box<::wink::hsm::ReceiveError>> {
            #[allow(unused_mut)]
            let mut #args = #args_new;
            #(#bindings)*
            #args.finish()?;
            #call.map_err(|message| ::std::boxed::Box::new(::wink::hsm::ReceiveError::Failed { receiver: #receiver, message }))
        }
    }
}

fn description(model: &Model, machine: &Ident) -> TokenStream {
    let machine_name = machine.to_string();
    let states = model.states.iter().map(|s| {
        let name = s.ident.to_string();
        let parent = match &s.parent {
            Some(p) => {
                let p = p.to_string();
                quote!(::core::option::Option::Some(#p))
            }
            None => quote!(::core::option::Option::None),
        };
        let initial = s.initial.is_some();
        let on_state = |h: &&Handler| h.state == s.ident;
        // Whether a handler of that kind is there, once `cfg` is decided.
        let any = |kind: fn(&HandlerKind) -> bool| {
            let present = model
                .handlers
                .iter()
                .filter(on_state)
                .filter(|h| kind(&h.kind))
                .map(|h| configured(&h.cfgs));
            quote!(false #(|| #present)*)
        };
        let entry = any(|k| matches!(k, HandlerKind::Entry));
        let exit = any(|k| matches!(k, HandlerKind::Exit));
        let empty_receiver = any(|k| matches!(k, HandlerKind::Receive(None)));
        let receivers = model
            .handlers
            .iter()
            .filter(on_state)
            .filter_map(|h| match &h.kind {
                HandlerKind::Receive(Some(lit)) => {
                    let (name, cfgs) = (lit.value(), &h.cfgs);
                    Some(quote!(#(#cfgs)* #name))
                }
                _ => None,
            });
        let transitions = model.handlers.iter().filter(on_state).flat_map(|h| {
            let on = match &h.kind {
                HandlerKind::Entry => quote!(::wink::hsm::Trigger::Entry),
                HandlerKind::Exit => quote!(::wink::hsm::Trigger::Exit),
                HandlerKind::Receive(None) => quote!(::wink::hsm::Trigger::Any),
                HandlerKind::Receive(Some(lit)) => quote!(::wink::hsm::Trigger::Message(#lit)),
            };
            let cfgs = &h.cfgs;
            h.targets
                .iter()
                .filter(|t| model.states.iter().any(|s| s.ident == **t))
                .map(move |t| {
                    let to = t.to_string();
                    quote!(#(#cfgs)* ::wink::hsm::Transition { on: #on, to: #to })
                })
                .collect::<Vec<_>>()
        });
        let cfgs = &s.cfgs;
        quote! {
            #(#cfgs)*
            ::wink::hsm::StateInfo {
                name: #name,
                parent: #parent,
                initial: #initial,
                entry: #entry,
                exit: #exit,
                receivers: &[#(#receivers),*],
                empty_receiver: #empty_receiver,
                transitions: &[#(#transitions),*],
            }
        }
    });
    quote! {
        static DESCRIPTION: ::wink::hsm::Description = ::wink::hsm::Description {
            machine: #machine_name,
            states: &[#(#states),*],
        };
        &DESCRIPTION
    }
}

/// `set-level` as `SetLevel`: ASCII letters and digits kept, each run of
/// anything else a word break (a message name is a word of any
/// characters; an identifier is not).
fn camel_case(name: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if upper {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    out
}

/// `true` when every `#[cfg(…)]` of `cfgs` holds, as an expression.
fn configured(cfgs: &[syn::Attribute]) -> TokenStream {
    let predicates = cfgs
        .iter()
        .filter_map(|attr| attr.parse_args::<TokenStream>().ok());
    quote!((true #(&& ::core::cfg!(#predicates))*))
}

/// `Outcome::into_outcome(Self::method(args))`, spanned at the handler's
/// return type: "a Wink handler must return `()` or `Result`…" points there.
fn outcome_call(handler: &Handler, args: TokenStream) -> TokenStream {
    let span = match &handler.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => handler.sig.ident.span(),
    };
    let mut method = handler.sig.ident.clone();
    method.set_span(span);
    quote_spanned!(span=> ::wink::hsm::Outcome::into_outcome(Self::#method(#args)))
}
