//! The `#[machine]` proc-macro of Wink: turns a module holding a states enum
//! and an annotated `impl` into a hierarchical state table. Use it through
//! `wink::machine`; the `wink` crate documents the attributes.
//!
//! The work is split the way it reads: [`parse`] (syn → model), [`validate`]
//! (model → errors with spans, all of them at once), [`codegen`] (model →
//! tokens). When there are errors, the module is still emitted with a
//! stand-in table, so the errors shown are the ones the user made and not a
//! cascade they caused.

mod codegen;
mod ctxt;
mod model;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns an annotated module into a Wink machine. See `wink::machine`.
#[proc_macro_attribute]
pub fn machine(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let module = match syn::parse::<syn::ItemMod>(input) {
        Ok(module) => module,
        Err(e) => {
            return syn::Error::new(
                e.span(),
                "#[machine] goes on a module: `#[wink::machine] mod name { … }`",
            )
            .to_compile_error()
            .into()
        }
    };
    let mut cx = ctxt::Ctxt::default();
    let upgrade = match args.to_string().as_str() {
        "" => false,
        "upgrade" => true,
        _ => {
            cx.error_spanned_by(
                &args,
                "#[machine] takes nothing, or `upgrade`: `#[machine(upgrade)]` carries the machine's data and state over a live upgrade",
            );
            false
        }
    };
    let mut model = parse::parse(module, &mut cx);
    model.upgrade = upgrade;
    let table = validate::validate(&model, &mut cx);
    match cx.check() {
        Ok(()) => codegen::generate(&model, &table),
        Err(errors) => {
            let mut out = errors.to_compile_error();
            out.extend(codegen::fallback(&model));
            out
        }
    }
    .into()
}
