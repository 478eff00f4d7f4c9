/** @module Interface switchyard:plugin/types@0.2.0 **/
/**
 * A range: `len` items from `offset`. Ranges of text and payloads count
 * bytes of the batch's `data`; ranges of headers and attributes count
 * entries of the batch's `fields`.
 */
export interface Span {
  offset: number,
  len: number,
}
/**
 * A name/value pair: two ranges of `data`, each valid UTF-8.
 */
export interface Field {
  name: Span,
  value: Span,
}
/**
 * One event as the gateway stored it, as modified by the plugins
 * before this one in the topic's chain.
 */
export interface Event {
  /**
   * The event's id (a ULID), stable across retries and replays: text in `data`.
   */
  id: Span,
  /**
   * The topic the event was published to: text in `data`.
   */
  topic: Span,
  /**
   * When the gateway accepted the event, in ms since the Unix epoch.
   */
  receivedAtMs: bigint,
  /**
   * The sender's headers, names in lower case: entries of `fields`.
   */
  headers: Span,
  /**
   * The payload's media type, e.g. `application/json`: text in `data`.
   */
  contentType: Span,
  /**
   * The payload: bytes of `data`.
   */
  payload: Span,
  /**
   * Key/value notes set by earlier plugins in the chain: entries of `fields`.
   */
  attributes: Span,
}
/**
 * The events of one call and the bytes their ranges point into.
 */
export interface Batch {
  data: Uint8Array,
  fields: Array<Field>,
  events: Array<Event>,
}
/**
 * What a plugin decides for one event. Every field is optional: a field
 * left unset keeps its current value, so plugins compose in a chain.
 */
export interface Verdict {
  /**
   * Destination names. An empty list drops the event; a name the
   * gateway does not know is a plugin error.
   */
  routes?: Array<string>,
  /**
   * 0-9, 9 most urgent. Above 9 is a plugin error.
   */
  priority?: number,
  /**
   * A replacement payload (transformation).
   */
  payload?: Uint8Array,
  /**
   * A replacement header list (transformation).
   */
  headers?: Array<[string, string]>,
  /**
   * A replacement media type, when the payload changes format.
   */
  contentType?: string,
  /**
   * Hold the event back this long before its first delivery.
   */
  delayMs?: bigint,
  /**
   * Deliveries with the same key stay in order where the destination
   * asks for FIFO.
   */
  orderingKey?: string,
  /**
   * Notes for the plugins after this one: each pair is set (inserted
   * or replaced by key) on the event's attributes.
   */
  attributes?: Array<[string, string]>,
}
