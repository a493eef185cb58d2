//! Publish with publisher confirms and `mandatory`: success means the broker confirmed AND routed it.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection};

use super::AmqpError;

/// A confirm-mode channel. Cheap to clone; many tasks may publish at once, each awaits its own confirm.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    confirm_timeout: Duration,
}

impl Publisher {
    /// Open a channel on `conn` and put it in confirm mode.
    pub async fn open(conn: &Connection, confirm_timeout: Duration) -> Result<Self, AmqpError> {
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| AmqpError::Channel(e.to_string()))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| AmqpError::Channel(format!("confirm.select: {e}")))?;
        Ok(Self {
            channel,
            confirm_timeout,
        })
    }

    /// The underlying channel (for declaring topology).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publish and wait for the broker's confirm. `Ok` only for an ack of a routed message; a nack, an
    /// unroutable return, a timeout or a connection error is an `Err`. After a connection error the
    /// publish is tried once more when lapin has recovered the channel (consumers dedupe repeats by
    /// message id).
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), AmqpError> {
        match self
            .publish_once(exchange, routing_key, body, props.clone())
            .await
        {
            Err(Recoverable(e)) => {
                tokio::time::timeout(self.confirm_timeout, self.channel.wait_for_recovery(e))
                    .await
                    .map_err(|_| AmqpError::ConfirmTimeout(self.confirm_timeout))?
                    .map_err(|e| AmqpError::Publish(e.to_string()))?;
                self.publish_once(exchange, routing_key, body, props)
                    .await
                    .map_err(|Recoverable(e)| AmqpError::Publish(e.to_string()))?
            }
            Ok(r) => r,
        }
    }

    async fn publish_once(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<Result<(), AmqpError>, Recoverable> {
        let confirm = self
            .channel
            .basic_publish(
                ShortString::from(exchange),
                ShortString::from(routing_key),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(Recoverable)?;
        let confirmation = match tokio::time::timeout(self.confirm_timeout, confirm).await {
            Err(_) => return Ok(Err(AmqpError::ConfirmTimeout(self.confirm_timeout))),
            Ok(c) => c.map_err(Recoverable)?,
        };
        Ok(match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(AmqpError::Unroutable {
                exchange: exchange.to_string(),
                routing_key: routing_key.to_string(),
                reply: format!("{} {}", returned.reply_code, returned.reply_text),
            }),
            Confirmation::Nack(_) => Err(AmqpError::Nack {
                exchange: exchange.to_string(),
                routing_key: routing_key.to_string(),
            }),
            Confirmation::NotRequested => {
                Err(AmqpError::Publish("channel is not in confirm mode".into()))
            }
        })
    }
}

/// A lapin error that may clear after auto-recovery.
struct Recoverable(lapin::Error);
