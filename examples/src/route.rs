//! The route guide: a service using all four call kinds, and a client that exercises each.

use std::collections::HashMap;
use std::sync::Mutex;

use anygrpc::{Channel, RequestStream, ResponseSink, RuntimeRef, Server, ServicerContext, Status};
use futures_util::StreamExt;

use crate::pb::routeguide::route_guide_client::RouteGuideClient;
use crate::pb::routeguide::route_guide_server::{RouteGuide, RouteGuideServer};
use crate::pb::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// A few named places, in E7 degrees.
pub fn features() -> Vec<Feature> {
    let at = |latitude, longitude| {
        Some(Point {
            latitude,
            longitude,
        })
    };
    vec![
        Feature {
            name: "Ridge".into(),
            location: at(407_838_351, -746_143_763),
        },
        Feature {
            name: "Harbour".into(),
            location: at(408_122_808, -743_999_179),
        },
        Feature {
            name: "Mill".into(),
            location: at(413_628_156, -749_015_468),
        },
        Feature {
            name: String::new(),
            location: at(419_999_544, -740_371_136),
        },
    ]
}

/// The route guide service: a fixed feature list and the notes left so far.
#[derive(Debug)]
pub struct Guide {
    features: Vec<Feature>,
    notes: Mutex<HashMap<(i32, i32), Vec<RouteNote>>>,
}

impl Default for Guide {
    fn default() -> Self {
        Self {
            features: features(),
            notes: Mutex::default(),
        }
    }
}

fn key(point: &Point) -> (i32, i32) {
    (point.latitude, point.longitude)
}

fn inside(rect: &Rectangle, point: &Point) -> bool {
    let (lo, hi) = (rect.lo.unwrap_or_default(), rect.hi.unwrap_or_default());
    let (lat_min, lat_max) = (lo.latitude.min(hi.latitude), lo.latitude.max(hi.latitude));
    let (lon_min, lon_max) = (
        lo.longitude.min(hi.longitude),
        lo.longitude.max(hi.longitude),
    );
    (lat_min..=lat_max).contains(&point.latitude) && (lon_min..=lon_max).contains(&point.longitude)
}

/// Great-circle distance in metres (haversine), between two E7 points.
pub fn distance(a: &Point, b: &Point) -> i32 {
    let rad = |e7: i32| f64::from(e7) / 1e7 * std::f64::consts::PI / 180.0;
    let (lat1, lat2) = (rad(a.latitude), rad(b.latitude));
    let (dlat, dlon) = (lat2 - lat1, rad(b.longitude) - rad(a.longitude));
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    (6_371_000.0 * 2.0 * h.sqrt().atan2((1.0 - h).sqrt())) as i32
}

impl RouteGuide for Guide {
    async fn get_feature(&self, point: Point, _: &mut ServicerContext) -> Result<Feature, Status> {
        let found = self
            .features
            .iter()
            .find(|f| f.location.as_ref() == Some(&point));
        Ok(found.cloned().unwrap_or(Feature {
            name: String::new(),
            location: Some(point),
        }))
    }

    async fn list_features(
        &self,
        rect: Rectangle,
        _: &mut ServicerContext,
        mut responses: ResponseSink<Feature>,
    ) -> Result<(), Status> {
        for feature in &self.features {
            if feature.location.as_ref().is_some_and(|p| inside(&rect, p)) {
                responses.send(feature.clone()).await?;
            }
        }
        Ok(())
    }

    async fn record_route(
        &self,
        mut points: RequestStream<Point>,
        _: &mut ServicerContext,
    ) -> Result<RouteSummary, Status> {
        let mut summary = RouteSummary::default();
        let mut last: Option<Point> = None;
        while let Some(point) = points.next().await {
            let point = point?;
            summary.point_count += 1;
            if self
                .features
                .iter()
                .any(|f| f.location.as_ref() == Some(&point) && !f.name.is_empty())
            {
                summary.feature_count += 1;
            }
            if let Some(last) = &last {
                summary.distance += distance(last, &point);
            }
            last = Some(point);
        }
        Ok(summary)
    }

    async fn route_chat(
        &self,
        mut notes: RequestStream<RouteNote>,
        _: &mut ServicerContext,
        mut responses: ResponseSink<RouteNote>,
    ) -> Result<(), Status> {
        while let Some(note) = notes.next().await {
            let note = note?;
            let earlier = {
                let mut all = self.notes.lock().unwrap_or_else(|p| p.into_inner());
                let here = all
                    .entry(key(&note.location.unwrap_or_default()))
                    .or_default();
                let earlier = here.clone();
                here.push(note);
                earlier
            };
            for old in earlier {
                responses.send(old).await?;
            }
        }
        Ok(())
    }
}

/// Starts a RouteGuide server on `127.0.0.1:port` (0 picks a free port).
pub async fn serve(runtime: RuntimeRef, port: u16) -> std::io::Result<(Server, u16)> {
    let server = Server::new(runtime);
    server.add_service(RouteGuideServer::new(Guide::default()));
    let port = server
        .add_insecure_port(&format!("127.0.0.1:{port}"))
        .await?;
    server.start();
    Ok((server, port))
}

/// What the client learned from one pass over the four call kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tour {
    /// `GetFeature` on the first known point.
    pub feature: String,
    /// `ListFeatures` over a rectangle covering the first three.
    pub listed: Vec<String>,
    /// `RecordRoute` over every known point.
    pub summary: RouteSummary,
    /// `RouteChat`: notes received back, in order.
    pub chat: Vec<String>,
}

/// The area holding three of [`features`] (the listing the tour and the tests ask for).
pub fn three_features_area() -> Rectangle {
    Rectangle {
        lo: Some(Point {
            latitude: 400_000_000,
            longitude: -750_000_000,
        }),
        hi: Some(Point {
            latitude: 415_000_000,
            longitude: -730_000_000,
        }),
    }
}

/// Runs all four call kinds against `target`.
pub async fn tour(runtime: RuntimeRef, target: &str) -> Result<Tour, Box<dyn std::error::Error>> {
    let channel = Channel::builder(target, runtime).build()?;
    let client = RouteGuideClient::new(channel.clone());
    let known = features();
    let first = known[0].location.unwrap_or_default();

    let feature = client.get_feature(first).await?.name;

    let rect = three_features_area();
    let mut listing = client.list_features(rect);
    let mut listed = Vec::new();
    while let Some(feature) = listing.read().await {
        listed.push(feature?.name);
    }

    let points: Vec<Point> = known.iter().filter_map(|f| f.location).collect();
    let summary = client
        .record_route_from(futures_util::stream::iter(points))
        .await?;

    let mut chat_call = client.route_chat();
    let spot = Some(first);
    let mut chat = Vec::new();
    for text in ["first", "second", "third"] {
        chat_call
            .write(RouteNote {
                location: spot,
                message: text.into(),
            })
            .await?;
    }
    chat_call.done_writing().await?;
    while let Some(note) = chat_call.next().await {
        chat.push(note?.message);
    }
    channel.close(None).await;
    Ok(Tour {
        feature,
        listed,
        summary,
        chat,
    })
}
