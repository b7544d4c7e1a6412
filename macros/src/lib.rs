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

/// (Documented in the `delayed` crate.)
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
    /// `cache`: results may be kept across runs.
    cache: bool,
    /// `version = "..."`, with `cache`.
    version: Option<syn::LitStr>,
    /// `limit = E`, `retry = E`, `timeout = E`, `priority = E`, in order.
    policies: Vec<(syn::Ident, syn::Expr)>,
}

/// The options that take a value, and an example of each.
const POLICIES: [(&str, &str); 5] = [
    ("limit", "limit = HTTP"),
    ("retry", "retry = Retry::attempts(3)"),
    ("timeout", "timeout = Duration::from_secs(5)"),
    ("priority", "priority = 10"),
    ("pool", "register, pool = \"gpu\""),
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
                Meta::Path(path) if path.is_ident("cache") => options.cache = true,
                Meta::NameValue(pair) if pair.path.is_ident("version") => {
                    if options.version.is_some() {
                        return Err(Error::new(
                            meta.span(),
                            "#[delayed] option `version` is given twice",
                        ));
                    }
                    match &pair.value {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(text),
                            ..
                        }) => options.version = Some(text.clone()),
                        other => {
                            return Err(Error::new(
                                other.span(),
                                "#[delayed] option `version` takes a string: write `#[delayed(cache, version = \"2\")]`",
                            ))
                        }
                    }
                }
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
                _ if meta.path().is_ident("version") => {
                    return Err(Error::new(
                        meta.span(),
                        "#[delayed] option `version` needs a value: write `#[delayed(cache, version = \"2\")]`",
                    ));
                }
                _ if ["blocking", "pure", "register", "cache"]
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
                        "unknown #[delayed] option: expected `blocking`, `pure`, `register`, `cache`, \
                         `version = \"...\"`, `limit = ...`, `retry = ...`, `timeout = ...`, `priority = ...` or `pool = \"...\"`",
                    ))
                }
            }
        }
        if let (Some(version), false) = (&options.version, options.cache) {
            return Err(Error::new(
                version.span(),
                "#[delayed] option `version` goes with `cache`: write `#[delayed(cache, version = \"2\")]`",
            ));
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

    let receiver = receiver(&options, sig)?;
    let params = sig
        .inputs
        .iter()
        .enumerate()
        .filter_map(|(i, input)| match input {
            FnArg::Receiver(_) => None,
            FnArg::Typed(typed) => Some(param(i, &typed.pat, &typed.ty)),
        })
        .collect::<syn::Result<Vec<_>>>()?;

    let (output, fallible) = output_type(&sig.output)?;
    let is_async = sig.asyncness.is_some();

    let vis = &item.vis;
    let name = &sig.ident;
    let name_str = name.to_string();
    let attrs = &item.attrs;
    let lint_attrs: Vec<_> = item
        .attrs
        .iter()
        .filter(|attr| {
            ["allow", "warn", "deny", "expect", "forbid"]
                .iter()
                .any(|lint| attr.path().is_ident(lint))
        })
        .collect();

    let mut body_sig = sig.clone();
    body_sig.ident = format_ident!("__delayed_body");
    let block = &item.block;
    let wrapped_name = format_ident!("__delayed_wrapped_{}", name);
    let mut wrapped_sig = sig.clone();
    wrapped_sig.ident = wrapped_name.clone();

    let shapes: Vec<_> = params
        .iter()
        .map(|p| shape(&p.storage, options.pure, true))
        .collect();
    let outer_params = params.iter().zip(&shapes).map(|(p, (shape_ty, _))| {
        let (name, storage) = (&p.name, &p.storage);
        quote_spanned!(storage.span()=> #name: impl ::delayed::IntoArg<#storage, #shape_ty>)
    });
    let self_param = receiver.as_ref().map(|_| quote!(&self,));

    let locals: Vec<_> = (0..params.len())
        .map(|i| format_ident!("__delayed_arg{}", i))
        .collect();
    let values: Vec<_> = (0..params.len())
        .map(|i| format_ident!("__delayed_value{}", i))
        .collect();

    let register = params.iter().zip(&locals).zip(&shapes).map(|((p, local), (_, shape))| {
        let (name, storage) = (&p.name, &p.storage);
        if p.borrowed.is_some() {
            quote_spanned!(storage.span()=> let #local = __delayed_builder.arg_ref::<#storage, _>(#name, &#shape);)
        } else {
            let mutability = (!is_async).then(|| quote!(mut));
            let input = syn::Ident::new(
                if options.register || options.cache { "arg_node" } else { "arg" },
                storage.span(),
            );
            quote_spanned!(storage.span()=> let #mutability #local = __delayed_builder.#input::<#storage, _>(#name, &#shape);)
        }
    });
    // The receiver is cloned once into the node, which every attempt of the
    // body borrows.
    let receive = receiver.as_ref().map(|span| {
        let hash = options.pure.then(|| {
            quote! {
                __delayed_builder.hash_seed(::core::any::type_name::<Self>());
                __delayed_builder.hash_ref::<Self>(&__delayed_self);
            }
        });
        quote_spanned! {*span=>
            let __delayed_self = __delayed_builder.borrow::<Self>(<Self as ::core::clone::Clone>::clone(self));
            #hash
        }
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
    let mark = options
        .cache
        .then(|| cache_mark(&options, &item, &params, &output));
    let policies = (!options.policies.is_empty() || options.cache).then(|| {
        quote! {
            static __DELAYED_POLICIES: ::std::sync::OnceLock<::delayed::__private::Policies> =
                ::std::sync::OnceLock::new();
            __delayed_builder.policies(__DELAYED_POLICIES.get_or_init(|| {
                ::delayed::__private::Policies::new() #(#setters)* #mark
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
    let mut fetch: Vec<_> = fetch.collect();
    if receiver.is_some() {
        fetch.push(if is_async {
            quote!(let __delayed_self = __delayed_deps.hold(&__delayed_self);)
        } else {
            quote!(let __delayed_self = __delayed_deps.get(&__delayed_self);)
        });
    }

    let receiver_arg = receiver.as_ref().map(|_| {
        if is_async {
            quote!(&*__delayed_self,)
        } else {
            quote!(__delayed_self,)
        }
    });
    let callee = match receiver {
        Some(_) => quote!(Self::#wrapped_name),
        None => quote!(__delayed_body),
    };
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
                async move { #callee(#receiver_arg #(#call_args),*).await }
            })
        }
    } else {
        quote! {
            __delayed_builder.#method(move |__delayed_deps: &mut ::delayed::__private::Deps| {
                #(#fetch)*
                #callee(#receiver_arg #(#call_args),*)
            })
        }
    };
    // A method's body needs `self`: it lives only in the wrapped sibling.
    // A function keeps a nested copy, which works in a module, a block or
    // an `impl` alike.
    let nested = receiver.is_none().then(|| quote!(#body_sig #block));
    let doc_name = format!("The body of [`{name}`], undecorated: see `delayed::wrapped!`.");

    Ok(quote! {
        #(#attrs)*
        #vis fn #name(#self_param #(#outer_params),*) -> ::delayed::Delayed<#output> {
            #(#lint_attrs)*
            #nested

            let mut __delayed_builder = ::delayed::__private::Builder::new(&#name_str);
            __delayed_builder.labeled();
            #registered
            #pure
            #policies
            #receive
            #(#register)*
            #finish
        }

        #[doc = #doc_name]
        #[doc(hidden)]
        #[allow(dead_code, clippy::too_many_arguments)]
        #(#lint_attrs)*
        #vis #wrapped_sig #block

        #entry
    })
}

/// The span of a `&self` receiver; other receivers are errors.
fn receiver(options: &Options, sig: &syn::Signature) -> syn::Result<Option<Span>> {
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        return Ok(None);
    };
    if receiver.reference.is_none()
        || receiver.mutability.is_some()
        || receiver.colon_token.is_some()
    {
        return Err(Error::new(
            receiver.span(),
            "#[delayed] methods take `&self`: the receiver is cloned once into the node and shared \
             by its runs; `self` by value, `&mut self` and typed receivers are not supported",
        ));
    }
    if let Some((_, Some(lifetime))) = &receiver.reference {
        return Err(Error::new(
            lifetime.span(),
            "#[delayed] methods take `&self` without a lifetime",
        ));
    }
    if options.register {
        return Err(Error::new(
            receiver.span(),
            "#[delayed(register)] is for functions: a method cannot be named in a keyed graph",
        ));
    }
    if options.cache {
        return Err(Error::new(
            receiver.span(),
            "#[delayed(cache)] is for functions: a method's receiver has no content key; \
             make it a function that takes the value as a parameter",
        ));
    }
    Ok(Some(receiver.span()))
}

/// The shape of a parameter type and its value: how deep the macro looks
/// into it. Vectors, arrays, tuples, options, maps and sets are looked
/// into; anything else is a leaf, hashed (in pure calls) by `Tokenize` or
/// `Hash`, and printed into the key (at the top level) when it can be.
fn shape(ty: &Type, pure: bool, top: bool) -> (TokenStream2, TokenStream2) {
    let private = quote!(::delayed::__private);
    match ty {
        Type::Paren(inner) => return shape(&inner.elem, pure, top),
        Type::Tuple(tuple) if (1..=12).contains(&tuple.elems.len()) => {
            let (types, values): (Vec<_>, Vec<_>) = tuple
                .elems
                .iter()
                .map(|elem| shape(elem, pure, false))
                .unzip();
            return (
                quote!(#private::Tuple<(#(#types,)*)>),
                quote!(#private::Tuple((#(#values,)*))),
            );
        }
        Type::Array(array) => {
            let (item_ty, item) = shape(&array.elem, pure, false);
            return (
                quote!(#private::ArrayOf<#item_ty>),
                quote!(#private::ArrayOf(#item)),
            );
        }
        Type::Path(path) if path.qself.is_none() => {
            if let Some(last) = path.path.segments.last() {
                let args = type_args(last);
                let ident = last.ident.to_string();
                let one = |wrapper: &str, item: &Type| {
                    let wrapper = format_ident!("{}", wrapper);
                    let (item_ty, item) = shape(item, pure, false);
                    (
                        quote!(#private::#wrapper<#item_ty>),
                        quote!(#private::#wrapper(#item)),
                    )
                };
                match (ident.as_str(), args.as_slice()) {
                    ("Vec", [item]) => return one("VecOf", item),
                    ("Option", [item]) => return one("OptionOf", item),
                    ("HashSet", [item] | [item, _]) | ("BTreeSet", [item]) => {
                        return one("SetOf", item)
                    }
                    ("HashMap", [key, value] | [key, value, _]) | ("BTreeMap", [key, value]) => {
                        let (_, key_leaf) = leaf(key, pure, false);
                        let (value_ty, value) = shape(value, pure, false);
                        return (
                            quote!(#private::MapOf<#key, #value_ty>),
                            quote!(#private::MapOf { key: #key_leaf, value: #value }),
                        );
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    leaf(ty, pure, top)
}

/// The shape of a leaf type.
fn leaf(ty: &Type, pure: bool, top: bool) -> (TokenStream2, TokenStream2) {
    let private = quote!(::delayed::__private);
    let hashed = pure.then(|| {
        quote_spanned! {ty.span()=>
            .hashed({
                #[allow(unused_imports)]
                use #private::{ViaHash as _, ViaTokenize as _};
                (&#private::Pick::<#ty>::new()).hasher()
            })
        }
    });
    let labeled = top.then(|| {
        quote! {
            .labeled({
                #[allow(unused_imports)]
                use #private::{ViaLabel as _, ViaNoLabel as _};
                (&#private::Pick::<#ty>::new()).labeler()
            })
        }
    });
    (
        quote!(#private::Leaf<#ty>),
        quote!(#private::Leaf::<#ty>::new() #hashed #labeled),
    )
}

/// (Documented in the `delayed` crate.)
#[proc_macro]
pub fn wrapped(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::Path>(input) {
        Ok(mut path) => match path.segments.last_mut() {
            Some(last) if last.arguments.is_empty() => {
                last.ident = format_ident!("__delayed_wrapped_{}", last.ident, span = last.ident.span());
                quote!(#path).into()
            }
            _ => Error::new(path.span(), "wrapped! takes the path of a #[delayed] function, without generic arguments")
                .to_compile_error()
                .into(),
        },
        Err(err) => Error::new(err.span(), "wrapped! takes the path of a #[delayed] function, such as `wrapped!(inc)` or `wrapped!(Model::predict)`")
            .to_compile_error()
            .into(),
    }
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
            let args = type_args(last);
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

/// The type arguments of a path segment: `[K, V]` for `HashMap<K, V>`.
fn type_args(segment: &syn::PathSegment) -> Vec<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
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

/// The `#[delayed(cache)]` description of a function, as a `Policies`
/// setter: its path, the FNV-1a hash of its own tokens (its code version),
/// the hand version, and the codecs of its output and parameters (which
/// must be serde types: the bounds are reported at each type).
fn cache_mark(options: &Options, item: &ItemFn, params: &[Param], output: &Type) -> TokenStream2 {
    let name_str = item.sig.ident.to_string();
    let code = fnv1a(&quote!(#item).to_string());
    let version = options
        .version
        .as_ref()
        .map_or_else(String::new, syn::LitStr::value);
    let inputs = params.iter().map(|p| {
        let storage = &p.storage;
        quote_spanned!(storage.span()=> ::delayed::cache::__private::input::<#storage>())
    });
    let spec = quote_spanned!(output.span()=> ::delayed::cache::__private::spec::<#output>);
    quote! {
        .mark(#spec(
            ::core::concat!(::core::module_path!(), "::", #name_str),
            #code,
            #version,
            ::std::vec![#(#inputs),*],
        ))
    }
}

/// FNV-1a, 64 bits: a hash that is the same on every run and machine.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
