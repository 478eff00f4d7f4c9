//! The OTLP trace pipeline: which collector, which transport, which sampler,
//! decided once at start from `[telemetry]` and the standard `OTEL_*`
//! variables, then a tracer provider owned by this gateway.
//!
//! We resolve the variables ourselves instead of leaving it to
//! opentelemetry-otlp, because its choices are not the spec's in every
//! version: it does not always pick gRPC or HTTP from
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, and with HTTP an endpoint given in code is
//! used as is (the generic variable needs `/v1/traces` appended).
//!
//! The provider is never installed as the global one: tests run several
//! gateways in one process, and each must export to its own collector.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};

use super::TelemetryError;
use super::config::{Protocol, TelemetryConfig};

/// Spans that may wait for export. The SDK's default (2048) overflows within
/// a tenth of a second at benchmark rates (several spans per event), and an
/// overflowing queue drops spans silently. 64k spans of ~1 KiB is a bounded
/// 64 MiB at worst.
const QUEUE: usize = 65_536;

/// Spans per export request: big requests amortise the protobuf and HTTP
/// overhead, which is what keeps 100% sampling affordable.
const EXPORT_BATCH: usize = 2048;

/// The router links its batch span to every event of the batch (512).
const MAX_LINKS: u32 = 1024;

/// How long one export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the pipeline was resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub protocol: Protocol,
    /// The full URL spans are sent to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub service_name: String,
    pub sampler: SamplerChoice,
    pub export_delay: Option<Duration>,
}

/// The sampler, as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedRatio(f64),
}

impl SamplerChoice {
    fn build(self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::Ratio(r) => Sampler::TraceIdRatioBased(r),
            Self::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Self::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Self::ParentBasedRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }

    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    fn from_env(name: &str, arg: Option<&str>) -> Result<Self, String> {
        let ratio = || -> Result<f64, String> {
            match arg {
                None => Ok(1.0),
                Some(a) => a
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!("OTEL_TRACES_SAMPLER_ARG: {a:?} is not a ratio from 0.0 to 1.0")
                    }),
            }
        };
        Ok(match name.trim() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::Ratio(ratio()?),
            "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedRatio(ratio()?),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER: unsupported sampler {other:?}"
                ));
            }
        })
    }
}

impl Settings {
    /// Decides the pipeline from the config section and the environment
    /// (`env` is `std::env::var` in production, a map in unit tests).
    /// `None` means tracing is off: no section and no endpoint variable.
    pub fn resolve(
        config: Option<&TelemetryConfig>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
        {
            return Ok(None);
        }
        let traces_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let generic_endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT");
        let asked = config.is_some()
            || traces_endpoint.is_some()
            || generic_endpoint.is_some()
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "otlp");
        if !asked {
            return Ok(None);
        }
        let empty = TelemetryConfig::default();
        let c = config.unwrap_or(&empty);
        c.validate()
            .map_err(|i| format!("telemetry.{}: {}", i.key, i.message))?;

        let protocol = match c.protocol {
            Some(p) => p,
            None => match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            {
                Some(p) => Protocol::parse(&p)?,
                None => Protocol::HttpProtobuf,
            },
        };
        // A base URL gets the signal path with HTTP; gRPC has no paths.
        let base = |url: &str| match protocol {
            Protocol::Grpc => url.to_owned(),
            Protocol::HttpProtobuf => {
                let url = url.trim_end_matches('/');
                if url.ends_with("/v1/traces") {
                    url.to_owned()
                } else {
                    format!("{url}/v1/traces")
                }
            }
        };
        let endpoint = match (&c.otlp_endpoint, traces_endpoint, generic_endpoint) {
            (Some(e), _, _) => base(e),
            // The per-signal variable is the full URL, used as is.
            (None, Some(e), _) => e,
            (None, None, Some(e)) => base(&e),
            (None, None, None) => match protocol {
                Protocol::Grpc => "http://localhost:4317".to_owned(),
                Protocol::HttpProtobuf => "http://localhost:4318/v1/traces".to_owned(),
            },
        };

        let mut headers: Vec<(String, String)> = var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|h| parse_headers(&h))
            .unwrap_or_default();
        for (k, v) in &c.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
            headers.push((k.to_ascii_lowercase(), v.expose().to_owned()));
        }

        let service_name = c
            .service_name
            .clone()
            .or_else(|| var("OTEL_SERVICE_NAME"))
            .or_else(|| {
                var("OTEL_RESOURCE_ATTRIBUTES").and_then(|a| {
                    parse_headers(&a)
                        .into_iter()
                        .find(|(k, _)| k == "service.name")
                        .map(|(_, v)| v)
                })
            })
            .unwrap_or_else(|| "switchyard".to_owned());

        let sampler = match c.sample_ratio {
            Some(r) => SamplerChoice::ParentBasedRatio(r),
            None => match var("OTEL_TRACES_SAMPLER") {
                Some(name) => {
                    SamplerChoice::from_env(&name, var("OTEL_TRACES_SAMPLER_ARG").as_deref())?
                }
                None => SamplerChoice::ParentBasedAlwaysOn,
            },
        };
        Ok(Some(Self {
            protocol,
            endpoint,
            headers,
            service_name,
            sampler,
            export_delay: c.export_delay,
        }))
    }

    /// Builds the exporter and a provider of this gateway's own. Must run
    /// inside the tokio runtime: the exporters send on it.
    pub fn provider(&self) -> Result<SdkTracerProvider, TelemetryError> {
        let failed = |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        };
        let exporter = match self.protocol {
            Protocol::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &self.headers {
                    if let (Ok(k), Ok(v)) = (
                        tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
                        v.parse(),
                    ) {
                        metadata.insert(k, v);
                    }
                }
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(&self.endpoint)
                    .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                    .with_timeout(EXPORT_TIMEOUT)
                    .with_metadata(metadata)
                    .build()
                    .map_err(failed)?
            }
            Protocol::HttpProtobuf => {
                let client = RuntimeHttpClient::new(EXPORT_TIMEOUT).map_err(|message| {
                    TelemetryError::Exporter {
                        endpoint: self.endpoint.clone(),
                        message,
                    }
                })?;
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_endpoint(&self.endpoint)
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_timeout(EXPORT_TIMEOUT)
                    .with_headers(self.headers.iter().cloned().collect::<HashMap<_, _>>())
                    .build()
                    .map_err(failed)?
            }
        };
        // Start from the SDK's defaults so OTEL_BSP_* still apply, then make
        // the queue big enough for benchmark rates unless told otherwise.
        let mut batch = BatchConfigBuilder::default();
        if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
            batch = batch.with_max_queue_size(QUEUE);
        }
        if std::env::var_os("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").is_none() {
            batch = batch.with_max_export_batch_size(EXPORT_BATCH);
        }
        if let Some(d) = self.export_delay {
            batch = batch.with_scheduled_delay(d);
        }
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch.build())
            .build();
        let resource = Resource::builder()
            .with_service_name(self.service_name.clone())
            .build();
        Ok(SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(self.sampler.build())
            .with_max_links_per_span(MAX_LINKS)
            .with_resource(resource)
            .build())
    }
}

/// `k=v,k2=v2` as in `OTEL_EXPORTER_OTLP_HEADERS` and
/// `OTEL_RESOURCE_ATTRIBUTES`; values are percent-decoded.
pub fn parse_headers(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                // Two hex digits exactly: `from_str_radix` alone would take
                // a sign, reading `%+1` as 0x01.
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The OTLP/HTTP client: hyper on the gateway's own runtime.
///
/// The SDK's batch processor exports from a thread of its own, outside
/// tokio, so each request is spawned onto the runtime captured at start and
/// awaited through its join handle (which needs no runtime to wait on).
/// This spares us reqwest's blocking client, which would bring a second
/// reqwest and a second runtime into the binary.
#[derive(Debug)]
struct RuntimeHttpClient {
    handle: tokio::runtime::Handle,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    timeout: Duration,
}

impl RuntimeHttpClient {
    fn new(timeout: Duration) -> Result<Self, String> {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(tls);
        Ok(Self {
            handle: tokio::runtime::Handle::current(),
            client,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let client = self.client.clone();
        let timeout = self.timeout;
        let task = self.handle.spawn(async move {
            tokio::time::timeout(timeout, async move {
                let resp = client.request(request).await?;
                let (parts, body) = resp.into_parts();
                let body = body.collect().await?.to_bytes();
                Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, body))
            })
            .await
            .map_err(|_| -> opentelemetry_http::HttpError {
                format!("OTLP export timed out after {timeout:?}").into()
            })?
        });
        task.await.map_err(|e| -> opentelemetry_http::HttpError {
            format!("OTLP export task failed: {e}").into()
        })?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resolve(
        config: Option<&TelemetryConfig>,
        vars: &[(&str, &str)],
    ) -> Result<Option<Settings>, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::resolve(config, &|k| map.get(k).cloned())
    }

    #[test]
    fn header_values_decode_only_two_hex_digit_escapes() {
        assert_eq!(
            parse_headers("a=x%20y, b=%+1, c=%-1, d=100%, e=%zz%41"),
            [
                ("a".to_owned(), "x y".to_owned()),
                ("b".to_owned(), "%+1".to_owned()),
                ("c".to_owned(), "%-1".to_owned()),
                ("d".to_owned(), "100%".to_owned()),
                ("e".to_owned(), "%zzA".to_owned()),
            ]
        );
    }

    #[test]
    fn off_when_nothing_is_configured() {
        assert_eq!(resolve(None, &[]), Ok(None));
        assert_eq!(resolve(None, &[("OTEL_SERVICE_NAME", "x")]), Ok(None));
    }

    #[test]
    fn generic_endpoint_gets_the_signal_path_with_http() {
        let s = resolve(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.endpoint, "http://c:4318/v1/traces");
        assert_eq!(s.service_name, "switchyard");
        assert_eq!(s.sampler, SamplerChoice::ParentBasedAlwaysOn);
    }

    #[test]
    fn traces_endpoint_is_used_as_is_and_wins() {
        let s = resolve(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9999/custom"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, "http://b:9999/custom");
    }

    #[test]
    fn protocol_variable_picks_grpc_without_a_path() {
        let s = resolve(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(s.endpoint, "http://c:4317");
        assert!(
            resolve(
                None,
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                ],
            )
            .is_err()
        );
    }

    #[test]
    fn config_wins_over_env_and_env_fills_the_rest() {
        let c = TelemetryConfig {
            otlp_endpoint: Some("http://file:4318".into()),
            sample_ratio: Some(0.25),
            ..Default::default()
        };
        let s = resolve(
            Some(&c),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                ("OTEL_SERVICE_NAME", "edge"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b,x=y"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, "http://file:4318/v1/traces");
        assert_eq!(s.service_name, "edge");
        assert_eq!(s.sampler, SamplerChoice::ParentBasedRatio(0.25));
        assert!(s.headers.contains(&("api-key".into(), "a b".into())));
    }

    #[test]
    fn sampler_variables() {
        let s = resolve(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.sampler, SamplerChoice::ParentBasedRatio(0.0));
        let bad = resolve(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
        );
        assert!(bad.is_err());
    }

    #[test]
    fn disabled_by_the_sdk_switch() {
        assert_eq!(
            resolve(
                Some(&TelemetryConfig::default()),
                &[("OTEL_SDK_DISABLED", "true")]
            ),
            Ok(None)
        );
    }

    #[test]
    fn resource_attributes_name_the_service() {
        let s = resolve(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod,service.name=gw",
                ),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.service_name, "gw");
    }
}
