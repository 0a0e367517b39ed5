//! Live mode: asks the candidate's model for every case through an
//! OpenAI-compatible `POST {base_url}/v1/chat/completions`.
//!
//! The request is built from the candidate configuration: `model`,
//! `prompt_template` with `{{input}}` replaced by the case's input (the user
//! message), an optional `system_prompt` (a system message before it), and
//! `parameters.temperature`, `max_tokens` and `top_p` when set; nothing else
//! of the configuration is sent. The answer is `choices[0].message.content`.
//!
//! Building requests and reading answers are pure functions, tested
//! natively; only [`ask`] reaches the host, through `http::fetch_all` with
//! at most `max_in_flight` requests at once. It exists only in the build
//! with the `live` feature: calling the host's `http` makes the component
//! import it, and the host refuses such a component unless its manifest
//! grants `http`.

use gatehouse_plugin_sdk::golden::borrowed::Case;
use gatehouse_plugin_sdk::http::{self, Request, Response};
use serde_json::{Value, json};

use crate::params::LiveParams;
use crate::report::clip;

/// Where the user's text goes in `prompt_template`.
pub const PLACEHOLDER: &str = "{{input}}";

/// What of the candidate configuration a request needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig<'a> {
    pub model: &'a str,
    pub template: &'a str,
    pub system: Option<&'a str>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    pub top_p: Option<f64>,
}

impl<'a> ModelConfig<'a> {
    /// Reads the candidate configuration; the error says which field to fix
    /// and fails the verdict, since such a candidate cannot be asked.
    pub fn from_candidate(config: &'a Value) -> Result<Self, String> {
        let text = |field: &str| config.get(field).and_then(Value::as_str);
        let model = text("model").ok_or(
            "candidate has no `model` string, so the live golden evaluation cannot ask it; name the model",
        )?;
        let template = text("prompt_template").ok_or(
            "candidate has no `prompt_template` string, so the live golden evaluation cannot ask it; add one containing {{input}}",
        )?;
        if !template.contains(PLACEHOLDER) {
            return Err(
                "candidate's `prompt_template` has no {{input}}, so the model would never see a case; put {{input}} where the input goes"
                    .to_string(),
            );
        }
        let parameter = |name: &str| config.get("parameters").and_then(|p| p.get(name));
        Ok(ModelConfig {
            model,
            template,
            system: text("system_prompt"),
            temperature: parameter("temperature").and_then(Value::as_f64),
            max_tokens: parameter("max_tokens").and_then(Value::as_u64),
            top_p: parameter("top_p").and_then(Value::as_f64),
        })
    }
}

/// The chat completions request asking `config`'s model about `input`.
pub fn chat_request(live: &LiveParams, config: &ModelConfig, input: &str) -> Request {
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = config.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages
        .push(json!({ "role": "user", "content": config.template.replace(PLACEHOLDER, input) }));
    let mut body = json!({ "model": config.model, "messages": messages });
    if let Some(t) = config.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(n) = config.max_tokens {
        body["max_tokens"] = json!(n);
    }
    if let Some(p) = config.top_p {
        body["top_p"] = json!(p);
    }
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(live.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    Request {
        method: "POST".to_string(),
        url: format!(
            "{}/v1/chat/completions",
            live.base_url.trim_end_matches('/')
        ),
        headers,
        body: body.to_string().into_bytes(),
    }
}

/// The answer text of one response, or why there is none.
pub fn read_answer(result: Result<Response, http::Error>) -> Result<String, String> {
    let response = result.map_err(|e| e.message())?;
    if !response.is_success() {
        return Err(format!(
            "HTTP {}: {}",
            response.status,
            clip(&String::from_utf8_lossy(&response.body), 80)
        ));
    }
    let body = response.json()?;
    match &body["choices"][0]["message"]["content"] {
        Value::String(content) => Ok(content.clone()),
        _ => Err(format!(
            "answer has no choices[0].message.content: {}",
            clip(&body.to_string(), 80)
        )),
    }
}

/// Asks the model about every case's input, in order.
pub fn ask(
    live: &LiveParams,
    config: &ModelConfig,
    cases: &[Case],
) -> Result<Vec<Result<String, String>>, String> {
    #[cfg(feature = "live")]
    {
        let requests: Vec<Request> = cases
            .iter()
            .map(|case| chat_request(live, config, &case.input))
            .collect();
        Ok(http::fetch_all(&requests, live.max_in_flight)
            .into_iter()
            .map(read_answer)
            .collect())
    }
    #[cfg(not(feature = "live"))]
    {
        let _ = (live, config, cases);
        Err(NOT_IN_THIS_BUILD.to_string())
    }
}

/// Why a build without the `live` feature refuses live params.
pub const NOT_IN_THIS_BUILD: &str = "this build of golden-eval has no live mode (it would need `http`); attach the candidate's outputs and use `outputs`, or push the plugin built with `--features live` with a manifest granting `http` to the endpoint's host";

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use gatehouse_plugin_sdk::golden::borrowed::Expected;

    use super::*;

    const TRIAGE_V2: &str = include_str!("../../../examples/candidates/triage-v2.json");

    fn live() -> LiveParams {
        LiveParams {
            base_url: "http://127.0.0.1:8089/".to_string(),
            max_in_flight: 4,
            headers: BTreeMap::from([("authorization".to_string(), "Bearer k".to_string())]),
        }
    }

    fn cases<'a>(inputs: &[&'a str]) -> Vec<Case<'a>> {
        inputs
            .iter()
            .map(|input| Case {
                id: Cow::Borrowed(*input),
                input: Cow::Borrowed(*input),
                expected: Expected::Text(Cow::Borrowed("x")),
                tags: Vec::new(),
                scorer: None,
            })
            .collect()
    }

    fn response(status: u16, body: &str) -> Result<Response, http::Error> {
        Ok(Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn request_carries_model_prompt_and_sampling_parameters() {
        let config: Value = serde_json::from_str(TRIAGE_V2).expect("example parses");
        let model = ModelConfig::from_candidate(&config).expect("usable");
        let request = chat_request(&live(), &model, "I was charged twice");
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://127.0.0.1:8089/v1/chat/completions");
        assert!(
            request
                .headers
                .contains(&("authorization".into(), "Bearer k".into()))
        );
        assert!(
            request
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
        assert_eq!(body["model"], "gpt-4o-mini-2024-07-18");
        assert_eq!(body["temperature"], 0.1);
        assert_eq!(body["max_tokens"], 16);
        assert_eq!(body["top_p"], 1.0);
        assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["messages"][0]["role"], "user");
        let content = body["messages"][0]["content"].as_str().expect("content");
        assert!(
            content.ends_with("Ticket:\nI was charged twice"),
            "{content}"
        );
        assert!(body.get("pricing").is_none() && body.get("labels").is_none());
    }

    #[test]
    fn system_prompt_comes_first_and_unset_parameters_are_left_out() {
        let config =
            json!({"model": "m", "prompt_template": "Q: {{input}}", "system_prompt": "Be terse."});
        let model = ModelConfig::from_candidate(&config).expect("usable");
        let body: Value =
            serde_json::from_slice(&chat_request(&live(), &model, "hi").body).expect("JSON");
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "Be terse."})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "Q: hi"})
        );
        assert!(body.get("temperature").is_none() && body.get("max_tokens").is_none());
    }

    #[test]
    fn unusable_candidates_name_the_field_to_fix() {
        let err =
            ModelConfig::from_candidate(&json!({"prompt_template": "{{input}}"})).unwrap_err();
        assert!(err.contains("`model`"), "{err}");
        let err = ModelConfig::from_candidate(&json!({"model": "m"})).unwrap_err();
        assert!(err.contains("`prompt_template`"), "{err}");
        let err =
            ModelConfig::from_candidate(&json!({"model": "m", "prompt_template": "Classify."}))
                .unwrap_err();
        assert!(err.contains("no {{input}}"), "{err}");
    }

    #[test]
    fn answer_is_the_first_choice_content() {
        let body = r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"billing"}}]}"#;
        assert_eq!(read_answer(response(200, body)), Ok("billing".to_string()));
    }

    #[test]
    fn failed_requests_say_why() {
        let err = read_answer(response(503, "upstream overloaded")).unwrap_err();
        assert_eq!(err, "HTTP 503: upstream overloaded");
        let err = read_answer(response(200, "<html>")).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = read_answer(response(200, r#"{"choices":[]}"#)).unwrap_err();
        assert!(err.contains("no choices[0].message.content"), "{err}");
        let err = read_answer(Err(http::Error::Timeout)).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    #[cfg(feature = "live")]
    #[test]
    fn off_wasm_every_live_request_fails_with_a_transport_error() {
        let config = json!({"model": "m", "prompt_template": "{{input}}"});
        let model = ModelConfig::from_candidate(&config).expect("usable");
        let answers = ask(&live(), &model, &cases(&["a", "b"])).expect("asked");
        assert_eq!(answers.len(), 2);
        assert!(
            answers
                .iter()
                .all(|a| a.as_ref().is_err_and(|e| e.contains("off WebAssembly")))
        );
    }

    #[cfg(not(feature = "live"))]
    #[test]
    fn build_without_live_refuses_live_params_with_the_fix() {
        let config = json!({"model": "m", "prompt_template": "{{input}}"});
        let model = ModelConfig::from_candidate(&config).expect("usable");
        let err = ask(&live(), &model, &cases(&["a"])).unwrap_err();
        assert!(
            err.contains("--features live") && err.contains("granting `http`"),
            "{err}"
        );
    }
}
