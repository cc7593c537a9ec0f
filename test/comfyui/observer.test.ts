import { conformance } from './scenarios.js';

conformance('observer');
