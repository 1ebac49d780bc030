use aiguillage_gateway::envelope::Envelope;
use aiguillage_gateway::mapping::Mapping;

#[test]
fn probe() {
    let text = r#"
[document]
a = "{{ fields.cerfa|split('*')|first }}"
b = "{{ (fields.cerfa|split('*')|list)[1] }}"
c = "{{ envelope.submitted_at[:10] }}"
d = "{{ 'DP1' if fields.dp1 }}"
e = "{{ 'DP2' if fields.dp2 }}"
f = "{{ (fields.q|int * fields.p|replace(',', '.')|float)|round(2) }}"
g = "{{ (3|int * '0.1'|float)|round(2) }}"
h = { template = "x", when = "{{ fields.qualite_raw != 'titulaire' }}" }
i = { template = "y", when = "{{ fields.qualite_raw == 'titulaire' }}" }
k = "{{ fields.dp1 }}"
l = "{{ 18 * 3.2 }}"
m = "{{ (18 * 3.2)|round(2) }}"
n = "{{ '%04d'|format(12) }}"
o = "{{ fields.absent|length }}"
p = "{{ fields.num }}"
"#;
    let m = Mapping::parse(text, "p.toml").unwrap_or_else(|e| panic!("{e}"));
    let body = serde_json::json!({"id":"x:y:1","commune":"44043","form":"f","submitted_at":"2026-11-28T23:12:00+01:00",
      "formdata":{"fields":{"cerfa":"13703*08","dp1":{"filename":"a.pdf","content":"JVBE"},"q":"3","p":"3,20","qualite_raw":"titulaire","num":12.5}}});
    let env = Envelope::parse(body.to_string().as_bytes(), 1 << 20).unwrap();
    match m.apply(&env) {
        Ok(d) => println!("{}", serde_json::to_string_pretty(&d.document).unwrap()),
        Err(e) => println!("ERR {e}"),
    }
}
