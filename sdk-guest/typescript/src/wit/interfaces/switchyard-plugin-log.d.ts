/** @module Interface switchyard:plugin/log@0.3.0 **/
/**
 * Writes one log line, tagged with the plugin's name. Rate-limited.
 */
export function log(level: Level, message: string, fields: Array<[string, string]>): void;
/**
 * # Variants
 * 
 * ## `"trace"`
 * 
 * ## `"debug"`
 * 
 * ## `"info"`
 * 
 * ## `"warn"`
 * 
 * ## `"error"`
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
