//! The layers of the library, lowest first, and a test that every module imports only from
//! layers below its own (or from inside its own component); and a test that no function is
//! longer than [`LONGEST_FUNCTION`] lines unless a comment beside it says why ("(long: …").
//!
//! A component is one entry of [`LAYERS`]: a module and everything under it, unless a longer
//! entry claims a part of it. Components on the same layer (the worker and the launcher) do not
//! import each other: what both need lives below them. Every source file must belong to a
//! component, so a new module has to be given its place here.

/// Lines a function may have (signature to closing brace) without a reason beside it.
pub const LONGEST_FUNCTION: usize = 80;

/// (module path, layer, what it is). Longest matching path wins.
pub const LAYERS: &[(&str, u8, &str)] = &[
    (
        "ffi",
        0,
        "declarations of server functions the bindings leave out",
    ),
    (
        "server",
        1,
        "the server interface: version shims, latch, clock, wait events, memory contexts",
    ),
    (
        "protocol",
        2,
        "the frontend/backend protocol messages a worker sends",
    ),
    ("params", 2, "bound parameters of an autonomous call"),
    ("catalog", 2, "catalog look-ups (type I/O functions)"),
    ("text", 2, "text cut to a size"),
    ("rng", 0, "the tests' seeded random numbers (no imports)"),
    ("error", 3, "the library's errors and their SQLSTATEs"),
    (
        "shm",
        4,
        "a job's shared memory: segment, table of contents, queue, fixed state",
    ),
    ("guc", 5, "the pg_background.* settings"),
    ("registry", 6, "the cluster-wide job registry"),
    (
        "spill",
        7,
        "spill files and kept results: format, writer, reader",
    ),
    ("worker", 8, "the background worker"),
    (
        "launcher",
        8,
        "the launching session: launch, read, detach, cancel",
    ),
    ("api", 9, "the SQL functions (safe Rust)"),
    (
        "c_symbols",
        10,
        "the library's C entry points: the worker's, and the C extension's names",
    ),
    ("lib", 11, "the library's root"),
    ("layers", 11, "this check"),
    ("tests", 11, "in-backend tests"),
];

#[cfg(test)]
mod check {
    use super::LAYERS;
    use std::path::Path;

    /// The component (index into LAYERS) of a module path, by longest matching prefix.
    fn component(module: &str) -> Option<usize> {
        LAYERS
            .iter()
            .enumerate()
            .filter(|(_, (path, _, _))| module == *path || module.starts_with(&format!("{path}::")))
            .max_by_key(|(_, (path, _, _))| path.len())
            .map(|(i, _)| i)
    }

    /// `src/launcher/pool.rs` → `launcher::pool`; `src/shm/mod.rs` → `shm`; `src/lib.rs` → `lib`.
    fn module_of(relative: &Path) -> String {
        let mut parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        parts.join("::")
    }

    /// The source without comments (line comments and doc comments; no block comments here).
    fn code_of(text: &str) -> String {
        text.lines()
            .map(|line| match line.find("//") {
                // (a `//` inside a string literal would cut the line short: none import there)
                Some(at) => &line[..at],
                None => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every crate-relative path the code names: `crate::a::b`, the items of
    /// `use crate::{a, b::c}`, and `super::x` resolved from `module`.
    fn named_paths(code: &str, module: &str) -> Vec<String> {
        let mut out = Vec::new();
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect::<String>()
                .trim_end_matches(':')
                .to_string()
        };
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // the top-level items of the group
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(ident(item.trim()));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                out.push(ident(item.trim()));
            } else {
                out.push(ident(rest));
            }
        }
        let parent: Vec<&str> = module.split("::").collect();
        for (at, _) in code.match_indices("super::") {
            // `super::super::` is counted from its first `super`
            if code[..at].ends_with("super::") {
                continue;
            }
            let mut rest = &code[at..];
            let mut up = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                rest = r;
                up += 1;
            }
            if parent.len() < up || module == "lib" {
                continue;
            }
            let base = &parent[..parent.len() - up];
            let name = ident(rest);
            let mut path: Vec<&str> = base.to_vec();
            path.push(&name);
            out.push(path.join("::"));
        }
        out.retain(|p| !p.is_empty());
        out
    }

    /// The library's `src` folder and every `.rs` file below it, sorted.
    fn source_files() -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        files.sort();
        (src, files)
    }

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn modules_import_only_from_layers_below() {
        let (src, files) = source_files();
        let mut problems = Vec::new();
        for file in &files {
            let module = module_of(file.strip_prefix(&src).expect("under src"));
            let Some(mine) = component(&module) else {
                problems.push(format!("{module}: has no place in layers::LAYERS"));
                continue;
            };
            let code = code_of(&std::fs::read_to_string(file).expect("read"));
            for target in named_paths(&code, &module) {
                let Some(theirs) = component(&target) else {
                    continue; // an item of the crate root (or a macro's path)
                };
                let (my_layer, their_layer) = (LAYERS[mine].1, LAYERS[theirs].1);
                if theirs != mine && their_layer >= my_layer {
                    problems.push(format!(
                        "{module} (layer {my_layer}) uses {target} (layer {their_layer})"
                    ));
                }
            }
        }
        problems.sort();
        problems.dedup();
        assert!(
            problems.is_empty(),
            "imports against the layer order:\n{}",
            problems.join("\n")
        );
    }

    /// The functions of `text` longer than `LONGEST_FUNCTION` lines without "(long:" (any
    /// case) in the comment lines just above them: (name, first line, length).
    fn long_functions(text: &str) -> Vec<(String, usize, usize)> {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let indent = line.len() - line.trim_start().len();
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "fn");
            let is_fn = at.is_some_and(|at| {
                words[..at].iter().all(|w| {
                    w.starts_with("pub")
                        || ["unsafe", "extern", "\"C-unwind\"", "\"C\"", "const"].contains(w)
                })
            });
            if !is_fn {
                i += 1;
                continue;
            }
            let name: String = words[at.unwrap_or(0) + 1]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // the end of the signature: a body, or none (a declaration)
            let mut j = i;
            while j < lines.len()
                && !lines[j].trim_end().ends_with('{')
                && !lines[j].trim_end().ends_with(';')
            {
                j += 1;
            }
            if j == lines.len() || lines[j].trim_end().ends_with(';') {
                i = j + 1;
                continue;
            }
            let close = format!("{}}}", " ".repeat(indent));
            let mut k = j + 1;
            while k < lines.len() && lines[k] != close {
                k += 1;
            }
            let length = k - i + 1;
            let said = lines[i.saturating_sub(4)..=j.min(lines.len() - 1)]
                .iter()
                .chain(lines.get(j + 1))
                .any(|l| l.trim_start().starts_with("//") && l.to_lowercase().contains("(long:"));
            if length > super::LONGEST_FUNCTION && !said {
                out.push((name, i + 1, length));
            }
            i = k + 1;
        }
        out
    }

    #[test]
    fn functions_are_short_or_say_why() {
        let (_, files) = source_files();
        let mut problems = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read");
            for (name, line, length) in long_functions(&text) {
                problems.push(format!(
                    "{}:{line}: {name} has {length} lines",
                    file.display()
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "functions over {} lines without a reason beside them:\n{}",
            super::LONGEST_FUNCTION,
            problems.join("\n")
        );
    }

    #[test]
    fn the_length_check_finds_long_functions_and_reasons() {
        let body = "    x();\n".repeat(90);
        let long = format!("pub fn f() {{\n{body}}}\n");
        assert_eq!(long_functions(&long), vec![("f".to_string(), 1, 92)]);
        let said = format!("// (long: a table)\nfn g(\n    a: i32,\n) {{\n{body}}}\n");
        assert!(long_functions(&said).is_empty());
        let short = "fn h() {\n    x();\n}\nunsafe extern \"C-unwind\" { fn k(); }\n";
        assert!(long_functions(short).is_empty());
    }

    #[test]
    fn the_check_reads_paths_as_rust_does() {
        let code = "use crate::{shm::{dsm, toc}, error::Error};\nlet x = crate::guc::X; // crate::api\nsuper::pool::f();";
        let paths = named_paths(&code_of(code), "launcher::channel");
        assert_eq!(
            paths,
            ["shm::", "error::Error", "guc::X", "launcher::pool::f"]
                .map(|p| p.trim_end_matches(':').to_string())
        );
        assert_eq!(
            component("launcher::pool").map(|i| LAYERS[i].0),
            Some("launcher")
        );
        assert_eq!(component("launchers"), None);
        assert_eq!(module_of(Path::new("shm/mod.rs")), "shm");
    }
}
