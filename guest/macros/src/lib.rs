//! The `#[task]` attribute of `tessera-guest` (see that crate for how to use it).

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, ItemFn, Lit, Meta, Pat, PatType, ReturnType, Type, parse_macro_input};

/// Turns a plain function into a Tessera task.
///
/// Next to the function it generates a module of the same name holding `TASK`, the
/// wrapper that converts the wire inputs to the function's arguments, the parameters
/// and context, and its result back. List the task in `tessera_guest::export_tasks!`.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = TokenStream2::from(attr);
        return syn::Error::new(attr.span(), "#[task] takes no arguments").to_compile_error().into();
    }
    let mut func = parse_macro_input!(item as ItemFn);
    match expand(&mut func) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// What an argument of the task function receives.
enum Role {
    /// The next input.
    Input,
    /// Every remaining input (`#[rest]`).
    Rest,
    /// The deserialised parameters (`#[params]`).
    Params,
    /// The context, by value or by reference.
    Context { by_ref: bool },
}

/// Removes the `#[params]` / `#[rest]` marker from an argument and says what it is.
fn classify(arg: &mut PatType) -> syn::Result<Role> {
    let mut role = None;
    let mut kept = Vec::new();
    for attr in arg.attrs.drain(..) {
        let marker = if attr.path().is_ident("params") {
            Some(Role::Params)
        } else if attr.path().is_ident("rest") {
            Some(Role::Rest)
        } else {
            None
        };
        match marker {
            Some(_) if role.is_some() => {
                return Err(syn::Error::new(attr.span(), "an argument is either #[params] or #[rest], not both"));
            }
            Some(r) => role = Some(r),
            None => kept.push(attr),
        }
    }
    arg.attrs = kept;
    if let Some(role) = role {
        return Ok(role);
    }
    let (ty, by_ref) = match &*arg.ty {
        Type::Reference(r) => (&*r.elem, true),
        other => (other, false),
    };
    let is_context = matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Context"));
    match (is_context, by_ref) {
        (true, by_ref) => Ok(Role::Context { by_ref }),
        (false, true) => {
            Err(syn::Error::new(arg.ty.span(), "task inputs are taken by value (only &Context is borrowed)"))
        }
        (false, false) => Ok(Role::Input),
    }
}

/// The first paragraph of the doc comment, on one line.
fn doc_summary(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        let Meta::NameValue(nv) = &attr.meta else { continue };
        if !nv.path.is_ident("doc") {
            continue;
        }
        if let Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) = &nv.value {
            lines.push(s.value().trim().to_owned());
        }
    }
    let paragraph: Vec<String> = lines.into_iter().skip_while(String::is_empty).take_while(|l| !l.is_empty()).collect();
    paragraph.join(" ")
}

/// Tokens as compact text (`ArrayD < f32 >` becomes `ArrayD<f32>`).
fn compact(tokens: &TokenStream2) -> String {
    let text = tokens.to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let next = chars.peek().copied();
            let prev = out.chars().last();
            let glue = matches!(next, Some('<' | '>' | ',' | ':' | ')' | ']'))
                || matches!(prev, Some('<' | '&' | ':' | '(' | '['));
            if glue {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn expand(func: &mut ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(sig.generics.span(), "a task function cannot be generic"));
    }
    if sig.asyncness.is_some() {
        return Err(syn::Error::new(sig.span(), "a task function cannot be async"));
    }
    let name = sig.ident.clone();
    let task_name = name.to_string();
    let vis = match &func.vis {
        syn::Visibility::Inherited => quote!(pub(crate)),
        other => quote!(#other),
    };

    let mut fixed_names = Vec::new();
    let mut bindings = Vec::new();
    let mut call_args = Vec::new();
    let mut signature = Vec::new();
    let mut has_rest = false;
    let mut has_params = false;
    for (i, input) in func.sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(arg) = input else {
            return Err(syn::Error::new(input.span(), "a task function cannot take self"));
        };
        let role = classify(arg)?;
        let arg_name = match &*arg.pat {
            Pat::Ident(p) => p.ident.to_string(),
            _ => format!("arg{}", i + 1),
        };
        let var = format_ident!("__arg{}", i);
        let ty = &arg.ty;
        signature.push(format!("{arg_name}: {}", compact(&quote!(#ty))));
        match role {
            Role::Input if has_rest => {
                return Err(syn::Error::new(arg.span(), "inputs cannot follow the #[rest] argument"));
            }
            Role::Input => {
                fixed_names.push(arg_name.clone());
                bindings.push(quote!(let #var: #ty = __args.next(#arg_name)?;));
                call_args.push(quote!(#var));
            }
            Role::Rest if has_rest => return Err(syn::Error::new(arg.span(), "only one argument can be #[rest]")),
            Role::Rest => {
                has_rest = true;
                bindings.push(quote!(let #var: #ty = __args.rest(#arg_name)?;));
                call_args.push(quote!(#var));
            }
            Role::Params if has_params => {
                return Err(syn::Error::new(arg.span(), "only one argument can be #[params]"));
            }
            Role::Params => {
                has_params = true;
                bindings.push(quote!(let #var: #ty = ::tessera_guest::__private::params(#task_name, __params)?;));
                call_args.push(quote!(#var));
            }
            Role::Context { by_ref: true } => call_args.push(quote!(__ctx)),
            Role::Context { by_ref: false } => call_args.push(quote!(::std::clone::Clone::clone(__ctx))),
        }
    }
    let output = match &func.sig.output {
        ReturnType::Default => "()".to_owned(),
        ReturnType::Type(_, ty) => compact(&quote!(#ty)),
    };
    let signature = format!("({}) -> {output}", signature.join(", "));
    let doc = doc_summary(&func.attrs);

    Ok(quote! {
        #func

        #[doc(hidden)]
        #[allow(non_snake_case, clippy::all)]
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            /// The task's entry for `tessera_guest::export_tasks!`.
            pub static TASK: ::tessera_guest::__private::Task = ::tessera_guest::__private::Task {
                name: #task_name,
                doc: #doc,
                signature: #signature,
                call: __call,
            };

            fn __call(
                __values: ::std::vec::Vec<::tessera_guest::WitValue>,
                __params: &str,
                __ctx: &::tessera_guest::Context,
            ) -> ::std::result::Result<::tessera_guest::WitValue, ::std::string::String> {
                let _ = (__params, __ctx);
                let mut __args =
                    ::tessera_guest::__private::Args::new(#task_name, __values, &[#(#fixed_names),*], #has_rest)?;
                #(#bindings)*
                let _ = &mut __args;
                ::tessera_guest::__private::output(#task_name, super::#name(#(#call_args),*))
            }
        }
    })
}
