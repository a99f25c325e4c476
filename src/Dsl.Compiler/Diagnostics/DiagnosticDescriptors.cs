using System.Collections.Generic;

namespace Dsl.Compiler.Diagnostics
{
    /// <summary>
    /// Every diagnostic the compiler reports. NN0xxx: syntax; NN1xxx: semantics and shapes;
    /// NN2xxx: warnings about batch-norm pitfalls and suspicious networks; NN9xxx: internal.
    /// Ids are stable: never renumber, only add.
    /// </summary>
    public static class DiagnosticDescriptors
    {
        /// <summary>NN0001: <c>unexpected '&lt;c&gt;'; expected &lt;what&gt;</c>.</summary>
        public static readonly DiagnosticDescriptor SyntaxError = new("NN0001", Severity.Error, "Syntax error");

        /// <summary>NN0002: <c>unterminated block comment: '/*' has no closing '*/'</c>.</summary>
        public static readonly DiagnosticDescriptor UnterminatedComment = new("NN0002", Severity.Error, "Unterminated block comment");

        /// <summary>NN0003: <c>the number '&lt;text&gt;' is out of range</c>.</summary>
        public static readonly DiagnosticDescriptor NumberOutOfRange = new("NN0003", Severity.Error, "Number out of range");

        /// <summary>NN0004: <c>the file declares no model</c>.</summary>
        public static readonly DiagnosticDescriptor NoModel = new("NN0004", Severity.Error, "No model declared");

        /// <summary>NN0005: <c>invalid character U+XXXX</c>.</summary>
        public static readonly DiagnosticDescriptor InvalidCharacter = new("NN0005", Severity.Error, "Invalid character");

        /// <summary>NN1001: <c>unknown layer 'x'; did you mean 'y'?</c>.</summary>
        public static readonly DiagnosticDescriptor UnknownLayer = new("NN1001", Severity.Error, "Unknown layer");

        /// <summary>NN1002: <c>'layer' has no argument 'x'; did you mean 'y'?</c>.</summary>
        public static readonly DiagnosticDescriptor UnknownArgument = new("NN1002", Severity.Error, "Unknown argument");

        /// <summary>NN1003: <c>argument 'x' of 'layer' is given more than once</c>.</summary>
        public static readonly DiagnosticDescriptor RepeatedArgument = new("NN1003", Severity.Error, "Repeated argument");

        /// <summary>NN1004: <c>'layer' needs argument 'x'</c>.</summary>
        public static readonly DiagnosticDescriptor MissingArgument = new("NN1004", Severity.Error, "Missing argument");

        /// <summary>NN1005: <c>'x' of 'layer' must be &lt;kind&gt;, not &lt;kind&gt;</c>.</summary>
        public static readonly DiagnosticDescriptor WrongValueKind = new("NN1005", Severity.Error, "Value of the wrong kind");

        /// <summary>NN1006: <c>'x' of 'layer' must be &lt;range&gt;, got &lt;value&gt;</c>.</summary>
        public static readonly DiagnosticDescriptor ValueOutOfRange = new("NN1006", Severity.Error, "Value out of range");

        /// <summary>NN1007: <c>'layer' takes at most N positional arguments</c>.</summary>
        public static readonly DiagnosticDescriptor TooManyPositional = new("NN1007", Severity.Error, "Too many positional arguments");

        /// <summary>NN1008: <c>a positional argument cannot follow named arguments</c>.</summary>
        public static readonly DiagnosticDescriptor PositionalAfterNamed = new("NN1008", Severity.Error, "Positional argument after a named one");

        /// <summary>NN1010: <c>'conv2d' expects N input channels but receives M</c>.</summary>
        public static readonly DiagnosticDescriptor ChannelMismatch = new("NN1010", Severity.Error, "Channel count mismatch");

        /// <summary>NN1011: <c>'flatten' yields N features (a×b×c) but 'linear' expects M</c>.</summary>
        public static readonly DiagnosticDescriptor FeatureMismatch = new("NN1011", Severity.Error, "Feature count mismatch");

        /// <summary>NN1012: <c>'bn2d' declares num_features N but its input has M channels</c>.</summary>
        public static readonly DiagnosticDescriptor NumFeaturesMismatch = new("NN1012", Severity.Error, "num_features mismatch");

        /// <summary>NN1013: <c>'layer' takes an input of shape &lt;shape&gt; but receives &lt;shape&gt;</c>.</summary>
        public static readonly DiagnosticDescriptor WrongRank = new("NN1013", Severity.Error, "Input of the wrong rank");

        /// <summary>NN1014: <c>'layer' reduces the &lt;dim&gt; to N: the input is too small</c>.</summary>
        public static readonly DiagnosticDescriptor SpatialSizeNotPositive = new("NN1014", Severity.Error, "Spatial size reaches zero");

        /// <summary>NN1015: <c>groups N must divide in_channels A and out_channels B</c>.</summary>
        public static readonly DiagnosticDescriptor GroupsDoNotDivide = new("NN1015", Severity.Error, "groups does not divide the channel counts");

        /// <summary>NN1016: <c>model 'x' is declared twice</c>.</summary>
        public static readonly DiagnosticDescriptor DuplicateModel = new("NN1016", Severity.Error, "Duplicate model name");

        /// <summary>NN1017: <c>layer name 'x' is already used</c>.</summary>
        public static readonly DiagnosticDescriptor DuplicateLayerName = new("NN1017", Severity.Error, "Duplicate layer name");

        /// <summary>NN1018: <c>'x' is a C# keyword and cannot name a model</c>.</summary>
        public static readonly DiagnosticDescriptor InvalidName = new("NN1018", Severity.Error, "Invalid name");

        /// <summary>NN1019: <c>the input shape must have 1 to 3 positive dimensions</c>.</summary>
        public static readonly DiagnosticDescriptor InvalidInputShape = new("NN1019", Severity.Error, "Invalid input shape");

        /// <summary>NN1020: <c>pooling padding must be at most half the kernel</c>.</summary>
        public static readonly DiagnosticDescriptor PoolPaddingTooLarge = new("NN1020", Severity.Error, "Pooling padding larger than half the kernel");

        /// <summary>NN1021: <c>frozen: true needs running statistics</c>.</summary>
        public static readonly DiagnosticDescriptor FrozenWithoutStatistics = new("NN1021", Severity.Error, "Frozen batch norm without running statistics");

        /// <summary>NN1022: <c>'layer' produces N values per sample, more than the model limit</c>.</summary>
        public static readonly DiagnosticDescriptor TooLarge = new("NN1022", Severity.Error, "Model too large");

        /// <summary>NN1023: <c>num_groups G does not divide the C channels of 'group_norm'</c>.</summary>
        public static readonly DiagnosticDescriptor NumGroupsDoNotDivide = new("NN1023", Severity.Error, "num_groups does not divide the channels");

        /// <summary>NN1024: <c>normalized_shape N is not the input's last dimension</c>.</summary>
        public static readonly DiagnosticDescriptor NormalizedShapeMismatch = new("NN1024", Severity.Error, "normalized_shape is not the input's last dimension");

        /// <summary>NN1025: <c>instance norm on [F]: a feature vector has no positions to normalize over</c>.</summary>
        public static readonly DiagnosticDescriptor InstanceNormOnFeatures = new("NN1025", Severity.Error, "Instance norm on features");

        /// <summary>NN1026: <c>add: 'skip' is [32, 14, 14] but 'out' is [16, 28, 28]</c>.</summary>
        public static readonly DiagnosticDescriptor AddShapeMismatch = new("NN1026", Severity.Error, "add of values with different shapes");

        /// <summary>NN1027: <c>concat: 'b' is [8, 14, 14] but 'a' is [8, 28, 28]; all but the channels must agree</c>.</summary>
        public static readonly DiagnosticDescriptor ConcatShapeMismatch = new("NN1027", Severity.Error, "concat of values whose other dimensions differ");

        /// <summary>NN1028: <c>add needs at least two values</c>.</summary>
        public static readonly DiagnosticDescriptor MergeArity = new("NN1028", Severity.Error, "Merge of fewer than two values");

        /// <summary>NN1029: <c>unknown block 'Foo'; did you mean 'Bar'?</c>.</summary>
        public static readonly DiagnosticDescriptor UnknownBlock = new("NN1029", Severity.Error, "Unknown block");

        /// <summary>NN1030: <c>block 'A' uses itself (A → B → A)</c>.</summary>
        public static readonly DiagnosticDescriptor RecursiveBlock = new("NN1030", Severity.Error, "Recursive block");

        /// <summary>NN1031: <c>'x' is used before it is bound</c>, or is bound nowhere.</summary>
        public static readonly DiagnosticDescriptor UnknownValue = new("NN1031", Severity.Error, "Unknown value");

        /// <summary>NN1032: <c>'x' is already bound</c>, or names a layer or <c>input</c>.</summary>
        public static readonly DiagnosticDescriptor InvalidBinding = new("NN1032", Severity.Error, "Value bound twice or misnamed");

        /// <summary>NN1033: <c>a group needs a name: ( ... ) as name</c>.</summary>
        public static readonly DiagnosticDescriptor GroupWithoutName = new("NN1033", Severity.Error, "Group without 'as'");

        /// <summary>NN1034: <c>* n</c> with n not an integer of at least 1, on a group, or with <c>as</c>.</summary>
        public static readonly DiagnosticDescriptor InvalidRepetition = new("NN1034", Severity.Error, "Invalid repetition");

        /// <summary>NN1035: a value where a layer belongs, an unbound chain before the last, a named or empty output.</summary>
        public static readonly DiagnosticDescriptor MisplacedStatement = new("NN1035", Severity.Error, "Misplaced value or statement");

        /// <summary>NN1036: a block declared twice, a lower-case block name, a parameter declared twice or named <c>input</c>.</summary>
        public static readonly DiagnosticDescriptor InvalidBlock = new("NN1036", Severity.Error, "Invalid block declaration");

        /// <summary>NN2001: <c>the bias of 'conv2d' is cancelled by the following batch norm; use bias: false</c>.</summary>
        public static readonly DiagnosticDescriptor RedundantBias = new("NN2001", Severity.Warning, "Bias cancelled by batch norm");

        /// <summary>NN2002: <c>dropout before batch norm</c>.</summary>
        public static readonly DiagnosticDescriptor DropoutBeforeBatchNorm = new("NN2002", Severity.Warning, "Dropout before batch norm");

        /// <summary>NN2003: <c>momentum 0.99 is probably the Keras convention</c>.</summary>
        public static readonly DiagnosticDescriptor KerasMomentum = new("NN2003", Severity.Warning, "Momentum of 0.9 or more");

        /// <summary>NN2004: <c>momentum 0 never updates the running statistics</c>.</summary>
        public static readonly DiagnosticDescriptor ZeroMomentum = new("NN2004", Severity.Warning, "Momentum of zero");

        /// <summary>NN2005: <c>batch norm directly after batch norm</c>.</summary>
        public static readonly DiagnosticDescriptor ConsecutiveBatchNorm = new("NN2005", Severity.Warning, "Consecutive batch norms");

        /// <summary>NN2006: <c>layers after softmax</c>.</summary>
        public static readonly DiagnosticDescriptor LayerAfterSoftmax = new("NN2006", Severity.Warning, "Layer after softmax");

        /// <summary>NN2007: <c>track_running_stats: false makes inference depend on the batch</c>.</summary>
        public static readonly DiagnosticDescriptor BatchDependentInference = new("NN2007", Severity.Warning, "Inference depends on the batch");

        /// <summary>NN2008: <c>'x' is bound but never used</c>.</summary>
        public static readonly DiagnosticDescriptor UnusedValue = new("NN2008", Severity.Warning, "Unused value");

        /// <summary>NN9001: <c>internal compiler error</c>: a bug, reported instead of crashing.</summary>
        public static readonly DiagnosticDescriptor InternalError = new("NN9001", Severity.Error, "Internal compiler error");

        /// <summary>All descriptors, in id order.</summary>
        public static IReadOnlyList<DiagnosticDescriptor> All { get; } = new[]
        {
            SyntaxError, UnterminatedComment, NumberOutOfRange, NoModel, InvalidCharacter,
            UnknownLayer, UnknownArgument, RepeatedArgument, MissingArgument, WrongValueKind, ValueOutOfRange,
            TooManyPositional, PositionalAfterNamed, ChannelMismatch, FeatureMismatch, NumFeaturesMismatch, WrongRank,
            SpatialSizeNotPositive, GroupsDoNotDivide, DuplicateModel, DuplicateLayerName, InvalidName, InvalidInputShape,
            PoolPaddingTooLarge, FrozenWithoutStatistics, TooLarge, NumGroupsDoNotDivide, NormalizedShapeMismatch, InstanceNormOnFeatures,
            AddShapeMismatch, ConcatShapeMismatch, MergeArity, UnknownBlock, RecursiveBlock, UnknownValue, InvalidBinding,
            GroupWithoutName, InvalidRepetition, MisplacedStatement, InvalidBlock,
            RedundantBias, DropoutBeforeBatchNorm, KerasMomentum, ZeroMomentum, ConsecutiveBatchNorm, LayerAfterSoftmax,
            BatchDependentInference, UnusedValue, InternalError,
        };
    }
}
