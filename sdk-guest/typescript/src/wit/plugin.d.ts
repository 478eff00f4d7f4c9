// world switchyard:plugin/plugin@0.3.0
export type * as SwitchyardPluginLog030 from './interfaces/switchyard-plugin-log.js'; // import switchyard:plugin/log@0.3.0
export type * as SwitchyardPluginTypes030 from './interfaces/switchyard-plugin-types.js'; // import switchyard:plugin/types@0.3.0
export * as handler from './interfaces/switchyard-plugin-handler.js'; // export switchyard:plugin/handler@0.3.0
