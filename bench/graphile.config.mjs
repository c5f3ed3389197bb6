// PostGraphile 5 for `make bench`: the Amber preset over the bench database, production mode
// (NODE_ENV=production, no watch, no explain, no GraphiQL), the same pool size as our gateway.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.BENCH_DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: Number(process.env.BENCH_POOL_SIZE ?? "10") },
    }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.BENCH_PORT ?? "5678"),
    graphqlPath: "/graphql",
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};

export default preset;
