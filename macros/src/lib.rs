//! The `#[delayed]` attribute of the `delayed` crate. Use it through
//! `delayed::delayed`; see that crate for the documentation.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    parse_quote, Error, FnArg, GenericArgument, ItemFn, Meta, Pat, PathArguments, ReturnType,
    Token, Type,
};

/// Turns a function into one that builds a lazy task-graph node.
///
/// See the `delayed` crate for the full documentation.
#[proc_macro_attribute]
pub fn delayed(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = TokenStream2::from(item.clone());
    let result = Options::parse(attr.into()).and_then(|options| {
        let item = syn::parse::<ItemFn>(item).map_err(|err| {
            Error::new(
                err.span(),
                "#[delayed] goes on a function: `fn`, `async fn`",
            )
        })?;
        expand(options, item)
    });
    match result {
        Ok(tokens) => tokens.into(),
        // Keep the item as written, so that the one error above is all the
        // user sees, not a cascade of "cannot find function" at call sites.
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#err #original).into()
        }
    }
}

#[derive(Default)]
struct Options {
    blocking: bool,
    pure: bool,
    register: bool,
    /// `limit = E`, `retry = E`, `timeout = E`, `priority = E`, in order.
    policies: Vec<(syn::Ident, syn::Expr)>,
}

/// The options that take a value, and an example of each.
const POLICIES: [(&str, &str); 4] = [
    ("limit", "limit = HTTP"),
    ("retry", "retry = Retry::attempts(3)"),
    ("timeout", "timeout = Duration::from_secs(5)"),
    ("priority", "priority = 10"),
];

impl Options {
    fn parse(attr: TokenStream2) -> syn::Result<Options> {
        let mut options = Options::default();
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
        for meta in metas {
            match &meta {
                Meta::Path(path) if path.is_ident("blocking") => options.blocking = true,
                Meta::Path(path) if path.is_ident("pure") => options.pure = true,
                Meta::Path(path) if path.is_ident("register") => options.register = true,
                Meta::NameValue(pair)
                    if POLICIES.iter().any(|(name, _)| pair.path.is_ident(name)) =>
                {
                    let name = pair.path.get_ident().unwrap().clone();
                    if options.policies.iter().any(|(seen, _)| *seen == name) {
                        return Err(Error::new(
                            meta.span(),
                            format!("#[delayed] option `{name}` is given twice"),
                        ));
                    }
                    options.policies.push((name, pair.value.clone()));
                }
                _ if POLICIES.iter().any(|(name, _)| meta.path().is_ident(name)) => {
                    let (name, example) = POLICIES
                        .iter()
                        .find(|(name, _)| meta.path().is_ident(name))
                        .unwrap();
                    return Err(Error::new(
                        meta.span(),
                        format!("#[delayed] option `{name}` needs a value: write `#[delayed({example})]`"),
                    ));
                }
                _ if ["blocking", "pure", "register"]
                    .iter()
                    .any(|flag| meta.path().is_ident(flag)) =>
                {
                    let name = meta.path().get_ident().unwrap();
                    return Err(Error::new(
                        meta.span(),
                        format!(
                            "#[delayed] option `{name}` takes no value: write `#[delayed({name})]`"
                        ),
                    ));
                }
                _ => {
                    return Err(Error::new(
                        meta.span(),
                        "unknown #[delayed] option: expected `blocking`, `pure`, `register`, `limit = ...`, \
                         `retry = ...`, `timeout = ...` or `priority = ...`",
                    ))
                }
            }
        }
        Ok(options)
    }
}

/// One parameter of the annotated function.
struct Param {
    /// The name in the generated signature.
    name: syn::Ident,
    /// The node's output type: `T` for `p: T` and `p: &T`, `String` for `&str`.
    storage: Type,
    /// For `&U` parameters, `U`.
    borrowed: Option<Type>,
}

fn expand(options: Options, item: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &item.sig;
    check_signature(&options, &item)?;

    let params = sig
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| match input {
            FnArg::Receiver(receiver) => Err(Error::new(
                receiver.span(),
                "#[delayed] cannot be used on methods: `self` cannot be shared between tasks; \
                 use a free function that takes the value, or `Delayed::map`",
            )),
            FnArg::Typed(typed) => param(i, &typed.pat, &typed.ty),
        })
        .collect::<syn::Result<Vec<_>>>()?;

    let (output, fallible) = output_type(&sig.output)?;
    let is_async = sig.asyncness.is_some();

    let vis = &item.vis;
    let name = &sig.ident;
    let name_str = name.to_string();
    let attrs = &item.attrs;
    let lint_attrs = item.attrs.iter().filter(|attr| {
        ["allow", "warn", "deny", "expect", "forbid"]
            .iter()
            .any(|lint| attr.path().is_ident(lint))
    });

    let mut body_sig = sig.clone();
    body_sig.ident = format_ident!("__delayed_body");
    let block = &item.block;

    let outer_params = params.iter().map(|p| {
        let (name, storage) = (&p.name, &p.storage);
        quote_spanned!(storage.span()=> #name: impl ::delayed::IntoDelayed<#storage>)
    });

    let locals: Vec<_> = (0..params.len())
        .map(|i| format_ident!("__delayed_arg{}", i))
        .collect();
    let values: Vec<_> = (0..params.len())
        .map(|i| format_ident!("__delayed_value{}", i))
        .collect();

    let register = params.iter().zip(&locals).map(|(p, local)| {
        let (name, storage) = (&p.name, &p.storage);
        let register = if p.borrowed.is_some() {
            quote_spanned!(storage.span()=> let #local = __delayed_builder.borrow::<#storage>(#name);)
        } else {
            let mutability = (!is_async).then(|| quote!(mut));
            let input = syn::Ident::new(
                if options.register { "input_node" } else { "input" },
                storage.span(),
            );
            quote_spanned!(storage.span()=> let #mutability #local = __delayed_builder.#input::<#storage>(#name);)
        };
        let hash = match (options.pure, p.borrowed.is_some()) {
            (false, _) => quote!(),
            (true, true) => quote_spanned!(storage.span()=> __delayed_builder.hash_ref::<#storage>(&#local);),
            (true, false) => quote_spanned!(storage.span()=> __delayed_builder.hash_input::<#storage>(&#local);),
        };
        quote!(#register #hash)
    });

    // The policies are made on the first call and shared by every node the
    // function makes: one allocation per function, not per node.
    let setters = options.policies.iter().map(|(name, expr)| {
        let span = expr.span();
        let value = match (name.to_string().as_str(), expr) {
            ("limit", syn::Expr::Reference(_)) => quote!(#expr),
            ("limit", _) => quote_spanned!(span=> &#expr),
            _ => quote!(#expr),
        };
        quote_spanned!(span=> .#name(#value))
    });
    let policies = (!options.policies.is_empty()).then(|| {
        quote! {
            static __DELAYED_POLICIES: ::std::sync::OnceLock<::delayed::__private::Policies> =
                ::std::sync::OnceLock::new();
            __delayed_builder.policies(__DELAYED_POLICIES.get_or_init(|| {
                ::delayed::__private::Policies::new() #(#setters)*
            }));
        }
    });

    let registered = options
        .register
        .then(|| quote!(__delayed_builder.registered();));
    let entry = options
        .register
        .then(|| entry(vis, name, &params, &sig.output));

    let pure = options.pure.then(|| {
        quote!(__delayed_builder.pure(::core::concat!(::core::module_path!(), "::", #name_str));)
    });

    // Owned inputs are moved out first: a sync body's borrows of the other
    // inputs must not overlap with those moves.
    let mut order: Vec<_> = params.iter().zip(&locals).zip(&values).collect();
    order.sort_by_key(|((p, _), _)| p.borrowed.is_some());
    let fetch = order.into_iter().map(|((p, local), value)| {
        // The turbofish puts a missing `Clone` on the parameter's type.
        let storage = &p.storage;
        let take = syn::Ident::new("take", storage.span());
        let cloned = syn::Ident::new("cloned", storage.span());
        match (is_async, p.borrowed.is_some()) {
            (false, false) => quote!(let #value = __delayed_deps.#take::<#storage>(&mut #local);),
            (false, true) => quote!(let #value = __delayed_deps.get(&#local);),
            (true, false) => quote!(let #value = __delayed_deps.#cloned::<#storage>(&#local);),
            (true, true) => quote!(let #value = __delayed_deps.hold(&#local);),
        }
    });
    let fetch: Vec<_> = fetch.collect();

    let call_args = params
        .iter()
        .zip(&values)
        .map(|(p, value)| match &p.borrowed {
            None => quote!(#value),
            Some(borrowed) => {
                let storage = &p.storage;
                let reference = if is_async {
                    quote!(&*#value)
                } else {
                    quote!(#value)
                };
                quote!(<#storage as ::core::borrow::Borrow<#borrowed>>::borrow(#reference))
            }
        });

    let method = match (is_async, options.blocking, fallible) {
        (true, _, false) => "future",
        (true, _, true) => "future_result",
        (false, true, false) => "blocking",
        (false, true, true) => "blocking_result",
        (false, false, false) => "sync",
        (false, false, true) => "sync_result",
    };
    // Bounds on the output and error types are reported at the return type.
    let method_span = match &sig.output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let method = syn::Ident::new(method, method_span);

    let finish = if is_async {
        quote! {
            __delayed_builder.#method(move |__delayed_deps: &::delayed::__private::Deps| {
                #(#fetch)*
                async move { __delayed_body(#(#call_args),*).await }
            })
        }
    } else {
        quote! {
            __delayed_builder.#method(move |__delayed_deps: &mut ::delayed::__private::Deps| {
                #(#fetch)*
                __delayed_body(#(#call_args),*)
            })
        }
    };

    Ok(quote! {
        #(#attrs)*
        #vis fn #name(#(#outer_params),*) -> ::delayed::Delayed<#output> {
            #(#lint_attrs)*
            #body_sig #block

            let mut __delayed_builder = ::delayed::__private::Builder::new(&#name_str);
            #registered
            #pure
            #policies
            #(#register)*
            #finish
        }

        #entry
    })
}

/// The registry entry of a `#[delayed(register)]` function: its name, a
/// shape per parameter, and a call with input nodes.
fn entry(
    vis: &syn::Visibility,
    name: &syn::Ident,
    params: &[Param],
    output: &ReturnType,
) -> TokenStream2 {
    let entry_name = format_ident!("__delayed_entry_{}", name);
    let name_str = name.to_string();
    let shapes = params.iter().map(|p| {
        let param_name = p.name.to_string();
        let shape = shape_of(&p.storage);
        quote_spanned!(p.storage.span()=> (#param_name, ::delayed::keyed::__private::param(#shape)))
    });
    let nexts = params.iter().map(|p| {
        let storage = &p.storage;
        quote!(__delayed_args.take::<#storage>())
    });
    let output_span = match output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let new = quote_spanned!(output_span=> ::delayed::keyed::Entry::new);
    quote! {
        /// The registry entry of this function, for `delayed::registry!`.
        #[doc(hidden)]
        #vis fn #entry_name() -> ::delayed::keyed::Entry {
            #new(
                #name_str,
                ::std::vec![#(#shapes),*],
                |__delayed_args: &mut ::delayed::keyed::__private::Args| #name(#(#nexts),*),
            )
        }
    }
}

/// The shape of a registered parameter of type `ty`: lists, options,
/// `String`-keyed maps and small tuples can hold key references; any other
/// type is a leaf.
fn shape_of(ty: &Type) -> TokenStream2 {
    let private = quote!(::delayed::keyed::__private);
    match ty {
        Type::Tuple(tuple) if (2..=4).contains(&tuple.elems.len()) => {
            let parts = tuple.elems.iter().map(shape_of);
            let function = format_ident!("tuple{}", tuple.elems.len());
            quote_spanned!(ty.span()=> #private::#function(#(#parts),*))
        }
        Type::Paren(inner) => shape_of(&inner.elem),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return quote_spanned!(ty.span()=> #private::leaf::<#ty>());
            };
            let args: Vec<&Type> = match &last.arguments {
                PathArguments::AngleBracketed(args) => args
                    .args
                    .iter()
                    .filter_map(|arg| match arg {
                        GenericArgument::Type(ty) => Some(ty),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let ident = last.ident.to_string();
            match (ident.as_str(), args.as_slice()) {
                ("Vec", [item]) => {
                    let item = shape_of(item);
                    quote_spanned!(ty.span()=> #private::vec(#item))
                }
                ("Option", [item]) => {
                    let item = shape_of(item);
                    quote_spanned!(ty.span()=> #private::option(#item))
                }
                ("HashMap" | "BTreeMap", [key, value]) if is_string(key) => {
                    let value = shape_of(value);
                    quote_spanned!(ty.span()=> #private::map::<#ty, _>(#value))
                }
                _ => quote_spanned!(ty.span()=> #private::leaf::<#ty>()),
            }
        }
        _ => quote_spanned!(ty.span()=> #private::leaf::<#ty>()),
    }
}

fn is_string(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none()
        && path.path.segments.last().is_some_and(|s| s.ident == "String" && s.arguments.is_empty()))
}

/// `registry![load, clean, analyze, store]`: a `delayed::keyed::Registry`
/// of `#[delayed(register)]` functions.
///
/// See the `delayed` crate for the documentation.
#[proc_macro]
pub fn registry(input: TokenStream) -> TokenStream {
    match registry_impl(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn registry_impl(input: TokenStream2) -> syn::Result<TokenStream2> {
    let paths = Punctuated::<syn::Path, Token![,]>::parse_terminated.parse2(input)?;
    let mut seen: Vec<String> = Vec::new();
    let mut inserts = Vec::new();
    for path in paths {
        let Some(last) = path.segments.last() else {
            continue;
        };
        if !last.arguments.is_empty() {
            return Err(Error::new(
                last.arguments.span(),
                "registry! takes function names, without generic arguments",
            ));
        }
        let name = last.ident.to_string();
        if seen.contains(&name) {
            return Err(Error::new(
                path.span(),
                format!("`{name}` is listed twice: a registry holds one function per name"),
            ));
        }
        seen.push(name);
        let mut entry = path.clone();
        if let Some(last) = entry.segments.last_mut() {
            last.ident = format_ident!("__delayed_entry_{}", last.ident, span = last.ident.span());
        }
        inserts.push(quote_spanned!(path.span()=> __delayed_registry.insert(#entry());));
    }
    Ok(quote! {{
        let mut __delayed_registry = ::delayed::keyed::Registry::new();
        #(#inserts)*
        __delayed_registry
    }})
}

fn check_signature(options: &Options, item: &ItemFn) -> syn::Result<()> {
    let sig = &item.sig;
    if let Some(constness) = &sig.constness {
        return Err(Error::new(
            constness.span(),
            "#[delayed] cannot be used on a `const fn`: remove `const`; the node is built and run at run time",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(Error::new(
            unsafety.span(),
            "#[delayed] cannot be used on an `unsafe fn`: a node runs later, where the caller's safety argument no longer holds; \
             make it a safe `fn` that checks its own preconditions",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(Error::new(
            abi.span(),
            "#[delayed] cannot be used on an `extern` function: remove the `extern` ABI; \
             the generated function is called from Rust and returns a `Delayed`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(Error::new(
            variadic.span(),
            "#[delayed] cannot be used on a variadic function",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.generics.span(),
            "#[delayed] does not support generic parameters or lifetimes: \
             write the function for concrete types (a thin generic wrapper can call it)",
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        return Err(Error::new(
            where_clause.span(),
            "#[delayed] does not support `where` clauses: remove it, and write the function for concrete types",
        ));
    }
    if options.blocking {
        if let Some(asyncness) = &sig.asyncness {
            return Err(Error::new(
                asyncness.span(),
                "#[delayed(blocking)] is for sync functions: an `async fn` already runs as a tokio task; \
                 remove `blocking`, or make the function sync",
            ));
        }
    }
    Ok(())
}

fn param(index: usize, pat: &Pat, ty: &Type) -> syn::Result<Param> {
    let name = match pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
            ident.ident.clone()
        }
        _ => format_ident!("__delayed_param{}", index),
    };
    if let Type::Reference(reference) = ty {
        if let Some(mutability) = &reference.mutability {
            return Err(Error::new(
                mutability.span(),
                "#[delayed] parameters cannot be `&mut`: a node's output is shared by every task that uses it; \
                 take `T` (moved or cloned in) or `&T` (borrowed)",
            ));
        }
        if let Some(lifetime) = &reference.lifetime {
            return Err(Error::new(
                lifetime.span(),
                "#[delayed] parameters cannot name a lifetime: write `&T`, which borrows the input node's output",
            ));
        }
        check_owned(&reference.elem)?;
        let borrowed = (*reference.elem).clone();
        let storage = storage_of(&borrowed);
        return Ok(Param {
            name,
            storage,
            borrowed: Some(borrowed),
        });
    }
    check_owned(ty)?;
    Ok(Param {
        name,
        storage: ty.clone(),
        borrowed: None,
    })
}

/// The owned type a `&U` parameter borrows from.
fn storage_of(borrowed: &Type) -> Type {
    match borrowed {
        Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
            parse_quote!(::std::string::String)
        }
        Type::Path(path)
            if path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Path" && s.arguments.is_empty()) =>
        {
            parse_quote!(::std::path::PathBuf)
        }
        Type::Slice(slice) => {
            let elem = &slice.elem;
            parse_quote!(::std::vec::Vec<#elem>)
        }
        other => other.clone(),
    }
}

/// Rejects types that cannot live in a node: borrowed data and `impl Trait`.
fn check_owned(ty: &Type) -> syn::Result<()> {
    struct Check(Option<Error>);
    impl<'ast> Visit<'ast> for Check {
        fn visit_type_reference(&mut self, node: &'ast syn::TypeReference) {
            self.0.get_or_insert_with(|| {
                Error::new(
                    node.span(),
                    "#[delayed] parameter and return types must own their data: \
                     only a whole parameter may be a reference (`&T`)",
                )
            });
        }
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            self.0.get_or_insert_with(|| {
                Error::new(
                    node.span(),
                    "#[delayed] does not support `impl Trait` in parameters or results: name a concrete type",
                )
            });
        }
        fn visit_lifetime(&mut self, node: &'ast syn::Lifetime) {
            if node.ident != "static" {
                self.0.get_or_insert_with(|| {
                    Error::new(node.span(), "#[delayed] types cannot borrow: lifetimes other than 'static are not supported; \
                         use an owned type (e.g. `String` for `Cow<'_, str>`)")
                });
            }
        }
    }
    let mut check = Check(None);
    check.visit_type(ty);
    check.0.map_or(Ok(()), Err)
}

/// The node's output type, and whether the function returns a `Result`.
fn output_type(output: &ReturnType) -> syn::Result<(Type, bool)> {
    let ty = match output {
        ReturnType::Default => return Ok((parse_quote!(()), false)),
        ReturnType::Type(_, ty) => ty,
    };
    check_owned(ty)?;
    if let Type::Path(path) = &**ty {
        if let Some(last) = path.path.segments.last() {
            if last.ident == "Result" {
                if let PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(GenericArgument::Type(ok)) = args.args.first() {
                        return Ok((ok.clone(), true));
                    }
                }
            }
        }
    }
    Ok(((**ty).clone(), false))
}
