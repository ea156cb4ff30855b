//! The two reflection services: v1 answers from the index, v1alpha converts its messages to
//! v1 and back through their encoding (the two are wire-identical).

use std::sync::Arc;

use anygrpc::{RequestStream, ResponseSink, ServicerContext, Status};
use prost::Message;

use crate::index::{Index, SentFiles};
use crate::{v1, v1alpha};

/// `grpc.reflection.v1.ServerReflection`, answering from a [`Reflection`](crate::Reflection)'s
/// index.
#[derive(Debug, Clone)]
pub struct ReflectionV1 {
    index: Arc<Index>,
}

impl ReflectionV1 {
    pub(crate) fn new(index: Arc<Index>) -> Self {
        Self { index }
    }
}

impl v1::server_reflection_server::ServerReflection for ReflectionV1 {
    async fn server_reflection_info(
        &self,
        mut requests: RequestStream<v1::ServerReflectionRequest>,
        _: &mut ServicerContext,
        mut responses: ResponseSink<v1::ServerReflectionResponse>,
    ) -> Result<(), Status> {
        let mut sent = SentFiles::default();
        while let Some(request) = requests.read().await {
            responses
                .send(self.index.answer(request?, &mut sent))
                .await?;
        }
        Ok(())
    }
}

/// `grpc.reflection.v1alpha.ServerReflection`, answering from a
/// [`Reflection`](crate::Reflection)'s index.
#[derive(Debug, Clone)]
pub struct ReflectionV1Alpha {
    index: Arc<Index>,
}

impl ReflectionV1Alpha {
    pub(crate) fn new(index: Arc<Index>) -> Self {
        Self { index }
    }
}

impl v1alpha::server_reflection_server::ServerReflection for ReflectionV1Alpha {
    async fn server_reflection_info(
        &self,
        mut requests: RequestStream<v1alpha::ServerReflectionRequest>,
        _: &mut ServicerContext,
        mut responses: ResponseSink<v1alpha::ServerReflectionResponse>,
    ) -> Result<(), Status> {
        let mut sent = SentFiles::default();
        while let Some(request) = requests.read().await {
            let answer = self.index.answer(convert(&request?)?, &mut sent);
            let answer: v1alpha::ServerReflectionResponse = convert(&answer)?;
            responses.send(answer).await?;
        }
        Ok(())
    }
}

/// `from` as the wire-identical message `To`.
fn convert<From: Message, To: Message + Default>(from: &From) -> Result<To, Status> {
    To::decode(from.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("converting between reflection versions: {e}")))
}
