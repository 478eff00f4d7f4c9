// world switchyard:plugin/plugin@0.2.0
export type * as SwitchyardPluginLog020 from './interfaces/switchyard-plugin-log.js'; // import switchyard:plugin/log@0.2.0
export type * as SwitchyardPluginTypes020 from './interfaces/switchyard-plugin-types.js'; // import switchyard:plugin/types@0.2.0
export * as handler from './interfaces/switchyard-plugin-handler.js'; // export switchyard:plugin/handler@0.2.0
