//! Balancing and resolution over loopback on every runtime: round_robin spreads calls evenly
//! and routes around a stopped server, pick_first fails over, `dns:///localhost:PORT` resolves
//! through the runtime.

use std::collections::BTreeMap;

use anygrpc::{CallOptions, Channel, LoadBalancing, RuntimeRef, Server, ServerCall, Status};
use anygrpc_examples::runtimes;
use bytes::Bytes;

async fn named_server(rt: &RuntimeRef, name: &'static str) -> (Server, u16) {
    let server = Server::new(rt.clone());
    server.add_generic_handler("/test.Who/Am", move |mut call: ServerCall| {
        Box::pin(async move {
            let _ = call.recv().await;
            call.send(Bytes::from(prost::Message::encode_to_vec(
                &name.to_string(),
            )))
            .await
            .unwrap();
            call.finish(Status::ok(), Default::default());
        })
    });
    let port = server.add_insecure_port("127.0.0.1:0").await.unwrap();
    server.start();
    (server, port)
}

async fn who(channel: &Channel, n: usize) -> BTreeMap<String, usize> {
    let method = channel.unary_unary::<String, String>("/test.Who/Am");
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let name = method
            .call_with(String::new(), CallOptions::new().wait_for_ready(true))
            .await
            .unwrap();
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

#[test]
fn round_robin_and_pick_first_over_loopback_on_every_runtime() {
    for &name in runtimes::RUNTIMES {
        runtimes::run(name, |rt| async move {
            let (a, pa) = named_server(&rt, "a").await;
            let (_b, pb) = named_server(&rt, "b").await;
            let (_c, pc) = named_server(&rt, "c").await;
            let target = format!("ipv4:///127.0.0.1:{pa},127.0.0.1:{pb},127.0.0.1:{pc}");

            let rr = Channel::builder(&target, rt.clone())
                .load_balancing(LoadBalancing::RoundRobin)
                .build()
                .unwrap();
            // Until every subchannel is up the spread may be uneven: wait for the three.
            let mut all_up = false;
            for _ in 0..200 {
                if who(&rr, 3).await.len() == 3 {
                    all_up = true;
                    break;
                }
            }
            assert!(all_up, "{name}: every subchannel connects");
            let counts = who(&rr, 30).await;
            assert_eq!(
                counts.values().copied().collect::<Vec<_>>(),
                vec![10, 10, 10],
                "{name}: {counts:?}"
            );

            let pick_first = Channel::builder(&target, rt.clone()).build().unwrap();
            assert_eq!(
                who(&pick_first, 5).await.get("a"),
                Some(&5),
                "{name}: the first address"
            );

            a.stop(None).await;
            let counts = who(&rr, 20).await;
            assert_eq!(
                counts.get("a"),
                None,
                "{name}: a left the rotation: {counts:?}"
            );
            assert_eq!(counts.values().sum::<usize>(), 20);
            let counts = who(&pick_first, 5).await;
            assert_eq!(
                counts.get("b"),
                Some(&5),
                "{name}: pick_first failed over: {counts:?}"
            );

            let dns = Channel::builder(format!("dns:///localhost:{pb}"), rt.clone())
                .build()
                .unwrap();
            assert_eq!(
                who(&dns, 2).await.get("b"),
                Some(&2),
                "{name}: dns:///localhost"
            );
            for channel in [rr, pick_first, dns] {
                channel.close(None).await;
            }
        })
        .unwrap();
    }
}
