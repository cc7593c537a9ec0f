import { conformance } from './scenarios.js';

conformance('tap');
