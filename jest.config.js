/** Jest runs TypeScript through swc (type-checking is `tsc --noEmit`, run first by `npm test`). */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.tsx?$": ["@swc/jest", { jsc: { target: "es2022" } }] },
  testTimeout: 60000,
  // Integration suites start real processes; never leave them behind silently.
  detectOpenHandles: false,
};
