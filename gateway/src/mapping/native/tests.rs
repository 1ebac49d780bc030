use super::super::scope::Slots;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

/// The native result must be exactly the engine's (trimmed, as fields are).
fn parse(case: &str) -> Option<Native> {
    let mut slots = Slots::default();
    Native::parse(case, &mut |parts| slots.path(parts, &[]))
}

/// `fields.a.b` in `fields`, read from the path as written.
fn resolve<'v>(fields: &'v Value, path: &VarPath) -> Option<&'v Value> {
    let mut keys = path.text().split('.');
    assert_eq!(keys.next(), Some("fields"));
    keys.try_fold(fields, |value, key| value.get(key))
}

#[test]
fn native_and_engine_agree() {
    let fields = serde_json::json!({
        "nom": "Lefèvre", "vide": "", "nul": null, "n": 3, "zero": 0, "b": true, "liste": ["a"],
        "date": "28/11/2026", "nature": "Copie intégrale", "cp": "44 190", "espaces": "  x  ",
        "type": "NAI", "qualite": "Le titulaire"
    });
    let mut tables = BTreeMap::new();
    tables.insert(
        "nature".to_owned(),
        BTreeMap::from([("Copie intégrale".to_owned(), "CPI".to_owned())]),
    );
    tables.insert(
        "qualite".to_owned(),
        BTreeMap::from([("Le titulaire".to_owned(), "titulaire".to_owned())]),
    );
    let tables: Tables = Arc::new(tables);
    let env = filters::environment(tables.clone());
    let root = Arc::new(serde_json::Map::from_iter([(
        "fields".to_owned(),
        fields.clone(),
    )]));
    let ctx = minijinja::Value::from(BTreeMap::from([(
        "fields".to_owned(),
        super::super::json::JsonNode::member(&root, "fields"),
    )]));
    let cases = [
        "{{ fields.nom }}", "{{ fields.nom|upper }}", "{{ fields.nom|lower|strip_accents }}",
        "{{ fields.absent|upper }}", "{{ fields.nul|upper }}", "{{ fields.vide or fields.nom }}",
        "{{ fields.absent or fields.nul or 'défaut' }}", "{{ (fields.absent or '')|upper }}",
        "{{ fields.n }}", "{{ fields.date|date_format('%Y%m%d') }}",
        "{{ fields.nature|code('nature') }}", "{{ fields.cp|postal_code }}", "{{ fields.nom|truncate_chars(3) }}",
        "{{ fields.absent|default('x') }}", "{{ fields.vide|default('x') }}", "{{ fields.espaces|trim }}",
        "{{fields.nom|upper}}", "{{ fields.n or 'x' }}", "{{ fields.zero or 'x' }}",
        "{{ fields.vide or fields.nom|upper }}", "{{ fields.nom and fields.vide }}", "{{ fields.vide and fields.nom }}",
        "{{ fields.type == 'NAI' }}", "{{ fields.type != 'NAI' }}", "{{ fields.absent == '' }}", "{{ not fields.vide }}",
        "{{ fields.qualite and fields.qualite|code('qualite') != 'titulaire' }}",
        "{{ fields.absent and fields.absent|code('qualite') != 'titulaire' }}",
        "{% if fields.type == 'NAI' %}{{ fields.nom }}{% else %}{{ fields.vide }}{% endif %}",
        "{% if fields.type == 'MAR' %}\n  {{ fields.nom }}\n{% elif fields.nom %}\n  {{ fields.date }}\n{% endif %}",
        "{% if fields.absent %}{{ fields.nom }}{% elif fields.vide %}{{ fields.date }}{% else %}{{ fields.cp|postal_code }}{% endif %}",
        "{% if fields.absent %}{{ fields.nom }}{% endif %}", "{% if fields.nom %}{% else %}{{ fields.nom }}{% endif %}",
        "{{ fields.nom }} {{ fields.date }}", "{% if fields.nom %}x{% endif %}", "Né(e) le {{ fields.date }} à { Nantes }",
        "{{ fields.nom }}{% if fields.cp %} : {{ fields.cp }}{% endif %}", "{{ fields.nom }}{% if fields.vide %} : {{ fields.cp }}{% endif %}",
        "{% if fields.nom %}{{ fields.nom }} {{ fields.cp }}{% if fields.type == 'NAI' %} (naissance){% endif %}{% else %}rien{% endif %}",
        "{% if fields.absent %}a{% elif fields.vide %}b{% else %}c, {{ fields.nom|lower }}{% endif %} fin",
        "{{ [fields.nom, fields.absent, fields.vide, fields.cp]|select|join(', ') }}", "{{ [fields.absent]|select|join('-') }}",
        "{{ [fields.nom|upper, 'x' ]|select|join(' / ') }}",
    ];
    for case in cases {
        let native = parse(case).unwrap_or_else(|| panic!("{case} is native"));
        let resolve = |path: &VarPath| resolve(&fields, path);
        let engine = env.render_str(case, ctx.clone()).unwrap();
        let native = native
            .eval(&resolve, &tables)
            .unwrap()
            .unwrap_or_else(|| panic!("{case} fell back"));
        assert_eq!(native.trim(), engine.trim(), "{case}");
    }
}

#[test]
fn booleans_and_lists_go_to_the_engine() {
    let fields = serde_json::json!({"b": true, "liste": ["a"]});
    let resolve = |path: &VarPath| resolve(&fields, path);
    let tables: Tables = Arc::new(BTreeMap::new());
    for case in [
        "{{ fields.b }}",
        "{{ fields.liste }}",
        "{{ fields.liste|upper }}",
    ] {
        let native = parse(case).expect("parses");
        assert!(native.eval(&resolve, &tables).unwrap().is_none(), "{case}");
    }
}

#[test]
fn the_rest_goes_to_the_engine() {
    for case in [
        "{{ fields.a|join(', ') }}",
        "{{- fields.a }}",
        "{{ fields.a|default('x')|upper|default('y') }}",
        "{{ 'a' ~ fields.b }}",
        "{{ fields['a'] }}",
        "{% for a in fields.l %}{{ a }}{% endfor %}",
        "{{ fields.a is defined }}",
        "{{ fields.a > 2 }}",
        "{{ range(3) }}",
        "{% if fields.a -%}{{ fields.b }}{% endif %}",
        "{# comment #}{{ fields.a }}",
        "{% for a in fields.l %}{{ a }}{% endfor %}x",
        "{{ [fields.a, fields.b]|join(', ') }}",
        "{{ [fields.a, fields.b]|select|join(', ')|upper }}",
        "{% if fields.a %}x{% else %}y{% elif fields.b %}z{% endif %}",
        "{% if fields.a %}x",
        "x }} y",
    ] {
        assert!(parse(case).is_none(), "{case} must go to the engine");
    }
}
